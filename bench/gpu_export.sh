#!/usr/bin/env bash
# The exported PyTorch file on a GPU: not CI and not a timing, a check for a machine with one.
#   bash bench/gpu_export.sh prepare   here: a small model of every family member, exported,
#                                      in bench/results/gpu_export/ (ConvScope installed)
#   bash bench/gpu_export.sh check     there, from the repository root, with that folder and
#                                      OUT (a folder for the files written) set
# `check` prints softmax parity CPU/GPU against the engine, 3 epochs of every member on the
# bundled photos, LeNet-5 on MNIST, torchrun, the refusals of too few GPUs, the several-process
# code on one GPU, `predict` with a GPU-trained file, and the export tests on that torch; the
# files trained there are in $OUT/models.tar, to open in ConvScope.
set -u
cd "$(dirname "$0")/.."
W=bench/results/gpu_export
C=resources/datasets/cifar4
MEMBERS="lenet-article alexnet zfnet vgg googlenet resnet8 resnet20 densenet"
if [ "${1:-}" = prepare ]; then
    set -e
    mkdir -p $W
    convscope train --arch lenet5 --limit 512 --out $W/lenet5.npz >/dev/null
    for a in $MEMBERS; do
        convscope train --dataset cifar4 --arch $a --limit 256 --out $W/${a//-/_}.npz >/dev/null
    done
    for m in $W/*.npz; do convscope export $m --pytorch ${m%.npz}.py; done
    exit
fi
[ "${1:-}" = check ] || { echo "usage: $0 prepare | check" >&2; exit 2; }
export PYTHONUNBUFFERED=1
M=$OUT/models
mkdir -p $M
say() { echo "=== $*"; }
python3 -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__,
    torch.cuda.device_count(), 'GPU(s):', torch.cuda.get_device_name(0))"
say parity; timeout 150 python3 bench/gpu_export_checks.py parity $W; echo rc=$?
for a in $MEMBERS; do
    a=${a//-/_}
    say "$a: 3 epochs on the photos"
    timeout 60 python3 $W/$a.py train --data $C --epochs 3 --out $M/$a.npz --device cuda
    echo rc=$?
done
say "lenet5: 2 epochs of MNIST, --device auto"
timeout 90 python3 $W/lenet5.py train --data resources/datasets/mnist --epochs 2 --out $M/lenet5.npz
echo rc=$?
say "torchrun, 1 process"
timeout 60 torchrun --standalone --nproc_per_node 1 $W/resnet8.py train --data $C --epochs 1 \
    --out $M/resnet8_torchrun.npz --device cuda
echo rc=$?
say "torchrun, more processes than GPUs: one line, exit 2"
n=$(($(python3 -c "import torch; print(torch.cuda.device_count())") + 1))
timeout 60 torchrun --standalone --nproc_per_node $n $W/resnet8.py train --data $C \
    --out $OUT/no.npz --device cuda 2>&1 | grep "error:"
say "cuda:N beyond the GPUs: one line, exit 2"
timeout 60 python3 $W/resnet8.py train --data $C --out $OUT/no.npz --device cuda:$n; echo rc=$?
for a in resnet8 densenet; do
    say "$a: the several-process code on a one-rank NCCL group"
    timeout 90 python3 bench/gpu_export_checks.py ddp $W/$a.py --data $C --epochs 2 \
        --out $M/${a}_ddp.npz --device cuda
    echo rc=$?
done
say "predict with a GPU-trained file"
timeout 60 python3 $W/resnet8.py predict --weights $M/resnet8.npz resources/samples; echo rc=$?
(cd $OUT && tar cf models.tar models && rm -rf models)
say "the export tests on this torch"
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/engine/test_export.py \
    tests/engine/test_export_hostile.py tests/engine/test_cli_export.py \
    tests/engine/test_torch_parity.py tests/engine/test_family_parity.py 2>&1 | tail -4
