"""``convscope classify``: files, folders, --json, bad files, the shipped model. No Qt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from desktop.cli import main
from engine.model import lenet5
from resources import shipped_model_path

HANDWRITING = Path(__file__).resolve().parents[1] / "handwriting" / "images"
needs_shipped = pytest.mark.skipif(
    not shipped_model_path().is_file(), reason="the shipped model file is not built yet"
)


def _digit_png(path: Path, *, offset=(0, 0), dark_on_light=True) -> Path:
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    img = Image.new("L", (240, 200), paper)
    dx, dy = offset
    ImageDraw.Draw(img).line(
        [(90 + dx, 50 + dy), (150 + dx, 50 + dy), (105 + dx, 160 + dy)], fill=ink, width=10
    )
    img.save(path)
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    from engine.modelfile import save_model

    path = tmp_path_factory.mktemp("model") / "random.npz"
    save_model(lenet5(np.random.default_rng(0)), path)
    return path


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["classify", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_files_print_one_line_each_with_every_class(capsys, tmp_path, model_file):
    a = _digit_png(tmp_path / "a.png")
    b = _digit_png(tmp_path / "b.png", dark_on_light=False)
    code, out, err = _run(capsys, model_file, a, b)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [str(a), str(b)]
    for line in lines:
        head, probs = line.split("   ", 1)
        assert head.split(": ")[1].split()[0] in [str(k) for k in range(10)]
        tokens = probs.split()
        assert tokens[0::2] == [str(k) for k in range(10)]
        assert all(t.endswith("%") for t in tokens[1::2])


def test_a_folder_is_classified_in_name_order_and_bad_files_are_one_line(
    capsys, tmp_path, model_file
):
    folder = tmp_path / "digits"
    folder.mkdir()
    for name in ("c.png", "a.jpg", "b.bmp"):
        img = Image.open(_digit_png(tmp_path / "tmp.png"))
        img.save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"")
    Image.new("L", (50, 50), 255).save(folder / "d_blank.png")
    code, out, err = _run(capsys, model_file, folder)
    assert code == 1  # some files failed, the others are reported
    names = [Path(line.split(":")[0]).name for line in out.strip().splitlines()]
    assert names == ["a.jpg", "b.bmp", "c.png"]
    err_lines = err.strip().splitlines()
    assert len(err_lines) == 2 and "Traceback" not in err
    assert "broken.png" in err_lines[0] and "empty" in err_lines[0]
    assert "d_blank.png" in err_lines[1] and "no ink found" in err_lines[1]


def test_json_is_a_list_of_results(capsys, tmp_path, model_file):
    a = _digit_png(tmp_path / "a.png")
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    code, out, err = _run(capsys, model_file, a, bad, "--json")
    assert code == 1
    doc = json.loads(out)
    assert isinstance(doc, list) and len(doc) == 2
    good, failed = doc
    assert {"file", "prediction", "classes", "probabilities"} <= good.keys()
    assert good["file"] == str(a)
    assert good["classes"] == [str(k) for k in range(10)]
    assert len(good["probabilities"]) == 10
    assert abs(sum(good["probabilities"]) - 1.0) < 1e-4
    assert good["prediction"] == good["classes"][int(np.argmax(good["probabilities"]))]
    assert good["inverted"] is True
    assert failed["file"] == str(bad) and failed["prediction"] is None
    assert "image" in failed["error"] and "bad.png" not in failed["error"]
    assert "bad.png" in err


def test_no_invert_and_no_center_change_what_the_network_sees(capsys, tmp_path, model_file):
    a = _digit_png(tmp_path / "a.png", offset=(70, 30))
    outs = {}
    for flags in ((), ("--no-invert",), ("--no-center",)):
        code, out, _ = _run(capsys, model_file, a, "--json", *flags)
        assert code == 0
        outs[flags] = np.array(json.loads(out)[0]["probabilities"])
        assert json.loads(out)[0]["inverted"] is (flags != ("--no-invert",))
    assert np.abs(outs[()] - outs[("--no-invert",)]).max() > 1e-3
    assert np.abs(outs[()] - outs[("--no-center",)]).max() > 1e-3


def test_nothing_classified_is_status_2(capsys, tmp_path, model_file):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n")
    code, out, err = _run(capsys, model_file, bad, tmp_path / "missing.png")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 2 and "missing.png" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, model_file, empty)
    assert code == 2 and "holds no image files" in err


@pytest.mark.parametrize("problem", ["missing", "folder", "corrupt"])
def test_bad_model_is_one_line(capsys, tmp_path, problem):
    img = _digit_png(tmp_path / "a.png")
    model = tmp_path / "model.npz"
    if problem == "folder":
        model.mkdir()
    elif problem == "corrupt":
        model.write_bytes(b"PK\x03\x04 not really a zip")
    code, out, err = _run(capsys, model, img)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("convscope classify: error:")


@needs_shipped
def test_the_shipped_model_reads_drawn_digits(capsys):
    files = [HANDWRITING / f"drawn-{d}-0.png" for d in range(10)]
    code, out, _ = _run(capsys, "shipped", *files, "--json")
    assert code == 0
    predictions = [r["prediction"] for r in json.loads(out)]
    assert sum(p == str(d) for d, p in enumerate(predictions)) >= 9


def test_help_mentions_the_shipped_model_in_a_subprocess():
    done = subprocess.run(
        [sys.executable, "-c", "from desktop.cli import main; main()", "classify", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "shipped" in done.stdout and "--no-invert" in done.stdout
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from desktop.cli import main\n"
            "try:\n    main(['classify', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('PySide6' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip().splitlines()[-1] == "False"  # headless: Qt never imported


@pytest.mark.parametrize("channels", [1, 3])
def test_a_model_of_other_classes_gets_the_plain_picture(capsys, tmp_path, channels):
    from engine.model import build_model
    from engine.modelfile import save_model

    model = build_model(
        {"name": "lenet-article", "in_channels": channels},
        np.random.default_rng(0),
        classes=["dog", "cat", "boat"],
    )
    path = tmp_path / "animals.npz"
    save_model(model, path)
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo)  # no digit, no ink: still classified
    code, out, err = _run(capsys, path, photo, "--json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["classes"] == ["dog", "cat", "boat"] and len(result["probabilities"]) == 3
    assert "inverted" not in result  # no digit preparation happened
    code, _, err = _run(capsys, path, photo, "--preprocess", "digit")
    assert code == 2 and "no ink found" in err  # forcing digit preparation on a flat picture


# ----- issue 10/11: photos, extreme images, hostile arguments, terminals ------------------------
@pytest.fixture(scope="module")
def photo_model_file(tmp_path_factory) -> Path:
    from engine.model import build_model
    from engine.modelfile import save_model

    model = build_model(
        {"name": "lenet-article", "in_channels": 3},
        np.random.default_rng(0),
        classes=["bird", "cat", "dog", "ship"],
    )
    path = tmp_path_factory.mktemp("photo") / "photo4.npz"
    save_model(model, path)
    return path


def test_a_photo_model_gets_the_photo_preparation(capsys, tmp_path, photo_model_file):
    from engine.inference import classify_inputs
    from engine.modelfile import load_model
    from engine.photo import prepare_photo

    photo = tmp_path / "boat.jpg"
    Image.new("RGB", (120, 80), (40, 90, 200)).save(photo)
    code, out, err = _run(capsys, photo_model_file, photo, "--json")
    assert code == 0, err
    (result,) = json.loads(out)
    model = load_model(photo_model_file)
    expected = classify_inputs(
        model, [prepare_photo(np.asarray(Image.open(photo)), model.input_spec)]
    )
    np.testing.assert_allclose(result["probabilities"], expected[0], atol=2e-6)
    code, out, _ = _run(capsys, photo_model_file, photo)
    assert out.startswith(f"{photo}: {result['prediction']} (")


@pytest.mark.parametrize("size", [(65, 1), (640, 9), (9, 640), (2000, 3), (2, 2)])
def test_read_thin_strips_and_extreme_shapes_give_a_result(capsys, tmp_path, model_file, size):
    a = np.full(size[::-1], 255, np.uint8)
    a[size[1] // 3 : max(size[1] // 3 + 1, 2 * size[1] // 3), size[0] // 3 : 2 * size[0] // 3] = 0
    path = tmp_path / "strip.png"
    Image.fromarray(a).save(path)
    for command in ("read", "classify"):
        code = main([command, str(model_file), str(path), "--json"])
        out, err = capsys.readouterr()
        assert "Traceback" not in err and "Error" not in err
        assert code in (0, 2)
        json.loads(out)  # a result per file (or its reason)


def test_json_never_holds_nan_or_infinity():
    from desktop.cli.common import json_text

    text = json_text({"p": [float("nan"), 0.5, float("inf")], "q": np.float32("-inf")})
    assert text == '{"p": [null, 0.5, null], "q": null}'


def test_an_empty_string_is_not_the_current_folder(capsys, tmp_path, model_file):
    _digit_png(tmp_path / "a.png")
    for command in ("classify", "read"):
        code = main([command, str(model_file), ""])
        _, err = capsys.readouterr()
        assert code == 2 and "empty string" in err and len(err.strip().splitlines()) == 1


def test_too_long_names_and_missing_folders_name_the_users_path(capsys, tmp_path, model_file):
    long_name = "n" * 300 + ".png"
    code, out, err = _run(capsys, model_file, long_name)
    assert code == 2 and out == "" and long_name in err and "too long" in err.lower()
    missing = tmp_path / "no" / "such" / "folder" / "x.png"
    code, _, err = _run(capsys, model_file, missing)
    assert code == 2 and str(missing) in err
    code, _, err = _run(capsys, tmp_path / ("m" * 300 + ".npz"), tmp_path / "x.png")
    assert code == 2 and "m" * 300 in err and "Errno" not in err
    code, _, err = _run(capsys, "", tmp_path / "x.png")
    assert code == 2 and "empty string" in err


def test_read_refuses_a_photo_model_in_one_line(capsys, tmp_path, photo_model_file):
    code = main(["read", str(photo_model_file), str(_digit_png(tmp_path / "a.png"))])
    _, err = capsys.readouterr()
    assert code == 2 and "digit model" in err and len(err.strip().splitlines()) == 1


def test_an_ascii_terminal_and_a_non_utf8_file_name_print_no_traceback(tmp_path, model_file):
    import os

    folder = os.fsencode(tmp_path / "names")
    os.mkdir(folder)
    _digit_png(Path(os.fsdecode(folder + b"/caf\xe9.png")))
    Image.new("L", (30, 30), 255).save(os.fsdecode(folder + b"/blank-\xff.png"))
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    outputs = []
    for command in ("classify", "read"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from desktop.cli import main; sys.exit(main())",
                command,
                str(model_file),
                os.fsdecode(folder),
            ],
            capture_output=True,
            env=env,
            timeout=120,
        )
        assert b"Traceback" not in done.stderr, done.stderr
        assert done.returncode in (0, 1), done.stderr
        outputs.append(done.stdout + done.stderr)
    assert all(b"caf\\udce9.png" in out and b"blank-\\udcff.png" in out for out in outputs)


def test_help_speaks_of_photos_too(capsys):
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    out = capsys.readouterr().out
    assert "photo" in out and "'photos'" in out and "digit" in out


def test_read_help_offers_only_the_models_it_reads(capsys):
    # `read photos ...` is refused (a digit model is needed): its MODEL help does not offer it
    with pytest.raises(SystemExit):
        main(["read", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "'shipped'" in out and "digit model" in out and "'photos'" not in out


def test_a_model_of_many_classes_lists_its_most_probable_ones(capsys, tmp_path):
    from engine.model import build_model
    from engine.modelfile import save_model

    classes = [f"c{k}" for k in range(300)]
    model = build_model("lenet5", np.random.default_rng(0), classes=classes)
    path = tmp_path / "many.npz"
    save_model(model, path)
    image = _digit_png(tmp_path / "a.png")
    code, out, _err = _run(capsys, path, image)
    assert code == 0
    head, rest = out.strip().split("   ", 1)
    listed, more = rest.split("  … ")
    tokens = listed.split()
    assert len(tokens) == 20 and more == "290 more"  # ten classes, ten percentages
    assert tokens[0] == head.split(": ")[1].split()[0]  # the prediction first
    percent = [float(t.rstrip("%")) for t in tokens[1::2]]
    assert percent == sorted(percent, reverse=True)
