"""The subcommands of `gradcheck`: vanishing, nielsen, slowdown and check, at small sizes, with their files."""

from __future__ import annotations

import gzip
import json
import struct
import sys
import textwrap

import numpy as np
import pytest

from gradcheck.book.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def run_json(capsys, *argv):
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("command", ["audit", "vanishing", "nielsen", "slowdown", "check"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gradcheck {command}") and "--json" in out and "--seed" in out


# -- vanishing -----------------------------------------------------------------------------------------------------
def test_vanishing_shows_the_same_decay_under_both_costs(capsys):
    status, data = run_json(capsys, "vanishing", "--depths", "2,12", "--batch", "8", "--width", "6")
    assert status == 0 and data["width"] == 6 and data["batch"] == 8
    profiles = {(p["activation"], p["cost"], p["depth"]): p for p in data["profiles"]}
    assert len(profiles) == 3 * 2 * 2
    for activation in ("sigmoid", "tanh", "relu"):
        for depth in (2, 12):
            ce, quad = profiles[activation, "cross_entropy", depth], profiles[activation, "quadratic", depth]
            assert len(ce["delta_norm"]) == depth and len(ce["grad_w_norm"]) == depth
            # the same weights and data: the cost rescales δᴸ only, so the quadratic profile is below CE's
            assert all(q < c for q, c in zip(quad["delta_norm"], ce["delta_norm"]))
    assert max(data["quadratic_delta_equals_sigma_prime_times_ce_delta_max_error"].values()) < 1e-12
    assert profiles["sigmoid", "cross_entropy", 12]["ratio"] < 1e-4  # σ′ ≤ 1/4 per layer


def test_vanishing_writes_a_png_and_json_into_out(tmp_path, capsys):
    assert main(["vanishing", "--depths", "3", "--batch", "4", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "vanishing.png").read_bytes().startswith(PNG)
    data = json.loads((tmp_path / "vanishing.json").read_text())
    assert {p["depth"] for p in data["profiles"]} == {3}
    out = capsys.readouterr().out
    assert "cross-entropy does not cure vanishing gradients" in out and "vanishing.png" in out


def test_vanishing_rejects_a_depth_of_zero(capsys):
    assert main(["vanishing", "--depths", "0,3"]) == 2
    assert "'0,3' is not a comma-separated list of whole numbers >= 1" in capsys.readouterr().err


def test_vanishing_rejects_an_unknown_activation(capsys):
    assert main(["vanishing", "--activations", "sigmoid,swish"]) == 2
    assert "swish" in capsys.readouterr().err


def test_a_depths_list_that_is_not_numbers_is_a_usage_error(capsys):
    assert main(["vanishing", "--depths", "two"]) == 2
    assert "comma-separated list of whole numbers" in capsys.readouterr().err


def test_plots_without_matplotlib_say_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["vanishing", "--depths", "2", "--out", str(tmp_path)]) == 2
    assert "pip install matplotlib (in gradcheck's clone: pip install '.[plot]')" in capsys.readouterr().err


def test_a_missing_optional_dependency_is_an_import_error_naming_the_extra(monkeypatch):
    from gradcheck.book.plots import require_matplotlib
    from gradcheck.errors import GradcheckError, MissingDependency

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependency, match=r"pip install matplotlib .*\.\[plot\]") as info:
        require_matplotlib()
    assert isinstance(info.value, ImportError) and isinstance(info.value, GradcheckError)


# -- nielsen -------------------------------------------------------------------------------------------------------
def test_nielsen_on_synthetic_data_is_labelled_and_gives_ratios(capsys):
    status, data = run_json(capsys, "nielsen", "--data", "synthetic", "--images", "60", "--trials", "2")
    assert status == 0 and data["data"].startswith("synthetic")
    assert [c["hidden_layers"] for c in data["comparisons"]] == [2, 3, 4]
    for c in data["comparisons"]:
        assert c["median_ratios_to_last"][-1] == 1.0 and len(c["norms"]) == 2
        assert c["median_ratios_to_last"][0] < 1  # the first hidden layer learns slowest
        assert len(c["book_ratios_to_last"]) == c["hidden_layers"]


def test_nielsen_on_scikit_learn_digits_is_close_to_the_book():
    pytest.importorskip("sklearn")
    from gradcheck.book import data, nielsen

    comparisons = nielsen.compare(
        data.load("digits", rng=np.random.default_rng(0)), trials=10, rng=np.random.default_rng(0)
    )
    for c in comparisons:
        ours, book = np.array(c.ratios[:-1]), np.array(c.book_ratios[:-1])
        # one unseeded MNIST draw against medians on 8×8 digits: the same order, within a factor of 2
        assert np.all(ours / book < 2) and np.all(ours / book > 0.5)


def write_idx(path, array, magic, compress):
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_nielsen_reads_mnist_idx_files(tmp_path, compress, capsys):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (40, 28, 28)), 2051, compress)
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, 40), 2049, compress)
    status, data = run_json(capsys, "nielsen", "--data", str(tmp_path), "--images", "40", "--trials", "1")
    assert status == 0 and data["data"].startswith("MNIST") and data["inputs"] == 784


def test_the_mnist_loader_scales_pixels_and_keeps_labels(tmp_path):
    from gradcheck.book.data import load_mnist

    pixels = np.arange(2 * 4 * 4).reshape(2, 4, 4) * 8
    write_idx(tmp_path / "train-images-idx3-ubyte", pixels, 2051, False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([7, 3]), 2049, False)
    digits = load_mnist(str(tmp_path / "train-images-idx3-ubyte"))
    assert digits.X.shape == (2, 16) and np.allclose(digits.X * 255, pixels.reshape(2, 16))
    assert digits.labels.tolist() == [7, 3] and digits.one_hot()[0, 7] == 1


@pytest.mark.parametrize(
    "problem, message",
    [
        ("swapped", "magic number 2049, not 2051"),
        ("truncated", "truncated"),
        ("missing", "has no train-labels-idx1-ubyte"),
        ("count", "holds 5 images but"),
    ],
)
def test_bad_mnist_files_are_named_with_the_fix(tmp_path, problem, message, capsys):
    images, labels = tmp_path / "train-images-idx3-ubyte", tmp_path / "train-labels-idx1-ubyte"
    write_idx(images, np.zeros((5, 4, 4)), 2049 if problem == "swapped" else 2051, False)
    if problem == "truncated":
        images.write_bytes(images.read_bytes()[:-3])
    if problem != "missing":
        write_idx(labels, np.zeros(4 if problem == "count" else 5), 2049, False)
    assert main(["nielsen", "--data", str(tmp_path), "--images", "5"]) == 2
    assert message in capsys.readouterr().err


def test_nielsen_asks_for_fewer_images_than_the_data_has(capsys):
    assert main(["nielsen", "--data", "synthetic", "--images", "5000"]) == 2
    assert "lower --images" in capsys.readouterr().err


def test_nielsen_training_records_a_norm_per_layer_per_epoch_and_a_plot(tmp_path, capsys):
    assert (
        main(
            [
                "nielsen",
                "--data",
                "synthetic",
                "--images",
                "50",
                "--trials",
                "1",
                "--epochs",
                "3",
                "--out",
                str(tmp_path),
                "--json",
            ]
        )
        == 0
    )
    training = json.loads(capsys.readouterr().out)["training"]
    assert len(training["norms"]) == 4 and all(len(n) == 4 for n in training["norms"])
    assert training["norms"][0] != training["norms"][-1]
    assert (tmp_path / "nielsen_training.png").read_bytes().startswith(PNG)
    assert (tmp_path / "nielsen.png").read_bytes().startswith(PNG)


# -- slowdown ------------------------------------------------------------------------------------------------------
def test_slowdown_reproduces_the_books_numbers(capsys):
    status, data = run_json(capsys, "slowdown")
    assert status == 0
    runs = {(r["cost"], r["start"]): r for r in data["runs"]}
    quick = runs["quadratic", "w=0.6, b=0.9"]
    assert quick["first_output"] == pytest.approx(1 / (1 + np.exp(-1.5)))  # 0.82
    assert 0.07 < quick["final_output"] < 0.11  # "about 0.09"
    stuck = runs["quadratic", "w=2, b=2"]
    assert stuck["first_output"] == pytest.approx(0.982, abs=1e-3) and 100 < stuck["slow_epochs"] < 250
    assert runs["cross_entropy", "w=2, b=2"]["slow_epochs"] < 20  # no plateau
    assert runs["cross_entropy", "w=2, b=2"]["final_output"] < stuck["final_output"]
    check = data["animation_check"]
    assert check["true_gradient_ok"] and not check["animation_gradient_ok"]


def test_slowdown_prints_the_failing_report_and_a_plot(tmp_path, capsys):
    assert main(["slowdown", "--epochs", "20", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rejects the animation's" in out and "gradient check FAILED" in out
    assert (tmp_path / "slowdown.png").read_bytes().startswith(PNG)


# -- check ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "usermodel.py").write_text(
        textwrap.dedent("""
        import numpy as np

        def f(x):
            return float(np.sum(np.sin(x) * x))

        def g(x):
            return np.cos(x) * x + np.sin(x)

        def g_slipped(x):
            out = g(x)
            out[2] *= 1 + 1e-4
            return out

        x0 = np.linspace(-1.0, 1.0, 7)

        def tree():
            return {"a": np.ones(3), "b": [np.zeros((2, 2))]}

        def f_tree(t):
            return float(np.sum(t["a"] ** 3) + np.sum(np.exp(t["b"][0])))

        def g_tree(t):
            return {"a": 3 * t["a"] ** 2, "b": [np.exp(t["b"][0])]}
    """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("usermodel", None)


def test_check_passes_a_correct_gradient(user_module, capsys):
    assert main(["check", "usermodel:f", "usermodel:g", "--shape", "4,3"]) == 0
    assert "gradient check passed" in capsys.readouterr().out


def test_check_fails_one_wrong_entry_and_names_it(user_module, capsys):
    status, data = run_json(capsys, "check", "usermodel:f", "usermodel:g_slipped", "--at", "usermodel:x0")
    assert status == 1 and not data["ok"]
    assert data["leaves"][0]["failed"] == 1 and data["leaves"][0]["worst"] == [2]


def test_check_takes_a_pytree_from_a_function(user_module, capsys):
    assert main(["check", "usermodel:f_tree", "usermodel:g_tree", "--at", "usermodel:tree"]) == 0


def test_check_in_fast_mode_and_float32(user_module, capsys):
    status, data = run_json(
        capsys, "check", "usermodel:f", "usermodel:g", "--mode", "fast", "--dtype", "float32", "--shape", "50"
    )
    assert status == 0 and data["calls"] <= 80


@pytest.mark.parametrize(
    "spec, message",
    [
        ("usermodel", "must be module:name"),
        ("nosuchmodule:f", "cannot import 'nosuchmodule'"),
        ("usermodel:nothing", "has no 'nothing'"),
        ("usermodel:x0", "not a function"),
    ],
)
def test_check_names_a_bad_function_spec(user_module, spec, message, capsys):
    assert main(["check", spec, "usermodel:g"]) == 2
    assert message in capsys.readouterr().err


def test_progress_bars_come_from_tqdm_on_stderr_unless_switched_off():
    import argparse

    from tqdm import tqdm

    from gradcheck.book.cli import _progress

    shown = _progress(argparse.Namespace(no_progress=False, json=False), "work")(range(3))
    assert isinstance(shown, tqdm) and list(shown) == [0, 1, 2]
    for quiet in ({"no_progress": True, "json": False}, {"no_progress": False, "json": True}):
        assert not isinstance(_progress(argparse.Namespace(**quiet), "work")(range(3)), tqdm)


def test_without_tqdm_the_work_runs_without_a_bar(monkeypatch):
    import argparse

    from gradcheck.book.cli import _progress

    monkeypatch.setitem(sys.modules, "tqdm", None)
    items = range(3)
    assert _progress(argparse.Namespace(no_progress=False, json=False), "work")(items) is items


@pytest.mark.parametrize(
    "argv, message",
    [
        (["slowdown", "--epochs", "-3"], "'-3' is not a whole number >= 0"),
        (["slowdown", "--eta", "0"], "'0' is not a positive learning rate"),
        (["nielsen", "--eta", "fast"], "'fast' is not a positive learning rate"),
        (["nielsen", "--images", "many"], "'many' is not a whole number >= 0"),
    ],
)
def test_bad_numbers_on_the_command_line_are_usage_errors(argv, message, capsys):
    assert main(argv) == 2 and message in capsys.readouterr().err


def test_nielsen_with_no_images_says_so(capsys):
    assert main(["nielsen", "--data", "synthetic", "--images", "0"]) == 2
    assert "--images" in capsys.readouterr().err


def test_a_reader_that_stops_early_gets_no_traceback():
    import subprocess

    # about 150 kB of JSON: more than a pipe holds, so the writer meets the closed pipe
    done = subprocess.run(
        f"{sys.executable} -m gradcheck vanishing --json | head -1", shell=True, capture_output=True, text=True
    )
    assert done.stdout == "{\n" and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["vanishing", "--seed", "-1"], "'-1' is not a whole number >= 0"),
        (["vanishing", "--activations", ","], "names no activation"),
        (["vanishing", "--width", "0"], "'0' is not a whole number >= 1"),
        (["vanishing", "--width", "1000000000", "--depths", "2"], "parameters, more than"),
        (["check", "usermodel:f", "usermodel:g", "--shape", "0"], "whole numbers >= 1"),
        (["check", "usermodel:f", "usermodel:g", "--shape", "-1"], "whole numbers >= 1"),
        (["check", "usermodel:f", "usermodel:g", "--at", "usermodel:g"], "cannot be called without arguments"),
        (["vanishing", "--out", ""], "names no folder"),
    ],
)
def test_hostile_arguments_end_in_a_usage_error_not_a_traceback(argv, fragment, user_module, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_out_naming_a_file_or_a_path_under_one_is_a_usage_error(tmp_path, capsys):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    for out in (str(afile), str(afile / "below")):
        assert main(["vanishing", "--depths", "2", "--out", out]) == 2
        assert "cannot make that folder" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x08", b"\x00\x00\x08\x03\x7f\xff\xff\xff" * 2, b"not gzip"])
def test_broken_idx_files_are_usage_errors(tmp_path, content, capsys):
    name = "train-images-idx3-ubyte.gz" if content == b"not gzip" else "train-images-idx3-ubyte"
    (tmp_path / name).write_bytes(content)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"")
    assert main(["nielsen", "--data", str(tmp_path), "--trials", "1"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_with_json_every_outcome_is_one_strict_json_object(capsys):
    for argv, status in (
        (["vanishing", "--seed", "-1", "--json"], 2),
        (["vanishing", "--bogus", "--json"], 2),
        (["vanishing", "--depths", "2", "--json"], 0),
    ):
        assert main(argv) == status
        text = capsys.readouterr().out
        data = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
        assert isinstance(data, dict)
        if status:
            assert data["ok"] is False and data["exit_status"] == status and data["error"]["message"]


def test_an_internal_error_exits_3_with_the_traceback(monkeypatch, capsys):
    import gradcheck.book.cli as cli

    def broken(args):
        raise KeyError("oops")

    monkeypatch.setitem(cli.COMMANDS, "audit", broken)
    assert main(["audit"]) == 3
    err = capsys.readouterr().err
    assert "internal error KeyError" in err and "Traceback" in err


@pytest.fixture
def hostile_module(tmp_path, monkeypatch):
    """Modules a user might name by mistake: broken, exiting, printing, raising."""
    files = {
        "brokensyntax.py": "def f(x:\n    return 1\n",
        "exitsatimport.py": "import sys\nsys.exit(1)\n",
        "chatty.py": textwrap.dedent("""
            import numpy as np
            print("loading chatty")

            def f(x):
                print("f called")
                return float(np.sum(x ** 2))

            def g(x):
                return 2 * x
        """),
        "quitter.py": textwrap.dedent("""
            import sys
            import numpy as np

            def f(x):
                sys.exit(0)

            def g(x):
                return 2 * x

            def raises(x):
                raise ValueError("my own bug")

            def empty_leaf():
                return {"a": np.zeros(0), "b": np.ones(3)}

            def sq(t):
                return float(np.sum(t["b"] ** 2))

            def dsq(t):
                return {"a": np.zeros(0), "b": 2 * t["b"]}
        """),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in files:
        sys.modules.pop(name[:-3], None)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["check", "brokensyntax:f", "brokensyntax:f"], "SyntaxError"),
        (["check", ".quitter:f", "quitter:g"], "relative"),
        (["check", "exitsatimport:f", "exitsatimport:f"], "exited"),
        (["check", "quitter:f", "quitter:g"], "exited"),
        (["check", "quitter:raises", "quitter:g"], "ValueError: my own bug"),
        (["check", "quitter:sq", "quitter:dsq", "--shape", "100000000000,100000000000"], "--shape"),
    ],
)
def test_the_users_own_code_failing_is_a_usage_error_that_says_so(argv, fragment, hostile_module, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "internal error" not in err


def test_the_users_output_never_mixes_into_json(hostile_module, capsys):
    status = main(["check", "chatty:f", "chatty:g", "--json"])
    captured = capsys.readouterr()
    assert status == 0
    assert json.loads(captured.out)["ok"] is True
    assert "loading chatty" in captured.err and "f called" in captured.err


def test_an_empty_leaf_in_the_point_does_not_break_a_passing_check(hostile_module, capsys):
    status, data = run_json(capsys, "check", "quitter:sq", "quitter:dsq", "--at", "quitter:empty_leaf")
    assert status == 0 and data["ok"] is True
    assert [leaf["shape"] for leaf in data["leaves"]] == [[0], [3]]


def test_an_idx_file_with_no_images_is_a_usage_error(tmp_path, capsys):
    import struct

    (tmp_path / "train-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 2051, 0, 28, 28))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, 0))
    assert main(["nielsen", "--data", str(tmp_path), "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert "no images" in err and "Traceback" not in err
