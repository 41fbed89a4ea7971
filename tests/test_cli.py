"""The gradcheck command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gradcheck.book.cli import main


def test_quick_audit_prints_a_table_and_exits_zero(capsys):
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["network", "verdict", "max", "rel", "err", "margin", "resolution"]
    assert "[4, 5, 3] relu/softmax/log_likelihood float64" in out
    assert "30 of 30 gradient checks passed" in out


def test_audit_json_output_is_valid_and_complete(capsys):
    assert main(["audit", "--quick", "--json", "--seed", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seed"] == 3 and data["failed"] == 0
    assert len(data["checks"]) == 30 and all(c["ok"] and c["margin"] <= 1 for c in data["checks"])


def test_the_default_report_answers_the_question_in_numbers(capsys):
    assert main(["--quick", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)["answer"]
    assert answer["ce_output_delta_minus_a_minus_y"] < 1e-14
    assert answer["quadratic_output_delta_minus_a_minus_y_times_sigma_prime"] < 1e-14
    assert (
        max(answer["bp2_max_error"].values()) < 1e-13
        and answer["quadratic_delta_equals_sigma_prime_times_ce_delta_max_error"] < 1e-12
    )
    ratio = answer["first_over_last"]
    assert ratio["cross_entropy"] < 1e-40  # 100 sigmoid layers: the first learns > 10⁴⁰ times slower than the last
    assert abs(ratio["cross_entropy"] / ratio["quadratic"] - 1) < 0.05


def test_the_default_report_prints_the_answer_after_the_audit(capsys):
    assert main(["--quick", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.index("30 of 30 gradient checks passed") < out.index("cross-entropy changes only δᴸ")
    assert "δᴸ = (a − y)·σ′(zᴸ)" in out


def test_a_failing_check_gives_a_non_zero_exit_and_the_report(monkeypatch, capsys):
    import gradcheck.book.audit as audit_module

    real = audit_module.audit

    def broken(case):
        loss, grad = case.net.as_functions(case.X, case.Y)
        return audit_module.check_gradient(
            loss, lambda p: {k: [g * 1.01 for g in v] for k, v in grad(p).items()}, case.net.params
        )

    monkeypatch.setattr(audit_module, "audit", broken)
    assert main(["--quick"]) == 1
    out = capsys.readouterr().out
    assert "0 of 30 gradient checks passed" in out and "gradient check FAILED" in out
    monkeypatch.setattr(audit_module, "audit", real)


def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "gradcheck", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("gradcheck ")


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "finite differences" in capsys.readouterr().out


def test_the_public_contract_is_importable_from_the_package():
    import gradcheck

    for name in (
        "Network",
        "check_gradient",
        "check_jacobian",
        "check_network",
        "assert_gradient",
        "GradientMismatch",
        "GradientReport",
        "GradcheckError",
    ):
        assert name in gradcheck.__all__ and hasattr(gradcheck, name)
    assert issubclass(gradcheck.GradientMismatch, AssertionError)
    assert not hasattr(gradcheck, "backprop")  # one spelling: net.backprop(X, Y)


def test_importing_gradcheck_does_not_import_hypothesis():
    code = "import sys, gradcheck; print('hypothesis' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
