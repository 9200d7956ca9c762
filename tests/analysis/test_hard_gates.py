"""Hard-gate inference: exactly 0/1 input/forget gates, on a copy, for G2 and plain LSTMs."""

from __future__ import annotations

import math

import pytest
import torch

from g2lstm.analysis import check_binary_gates, hard_gate_eval, hard_gate_model, record_traces
from g2lstm.errors import ConfigError
from g2lstm.nn import g2_modules


def test_hard_mode_gives_exactly_binary_input_and_forget_gates(g2_model, batches, forward) -> None:
    model = g2_model()
    result = check_binary_gates(model, batches, forward)
    assert result["binary"]
    for gate in ("input", "forget"):
        counts = result["gates"][gate]
        assert counts["values"] == 3 * 6 * 2 * 5 * 2  # batches x T x N x H x layers
        assert counts["non_binary"] == 0 and 0 < counts["ones"] < counts["values"]
    soft = check_binary_gates(model, batches, forward, harden=False)
    assert not soft["binary"] and soft["gates"]["forget"]["non_binary"] > 0
    # the output gate stays a sigmoid, and the original model keeps soft gates
    traces, _ = record_traces(hard_gate_model(model), batches[0], forward)
    out = torch.cat([t.output.reshape(-1) for _, t in traces])
    assert ((out != 0) & (out != 1)).any()
    assert all(m.gate_config.eval_gates.value == "soft" for _, m in g2_modules(model))


def test_hard_gates_are_the_sign_of_the_preactivation(g2_model, batches, forward) -> None:
    """With tau != 1 the hard gate is 1[a >= 0]; the soft gate then is > 0.5 exactly there."""
    model = g2_model(tau=0.5)
    soft, _ = record_traces(model, batches[0], forward)
    hard, _ = record_traces(hard_gate_model(model), batches[0], forward)
    # layer 0 sees the same inputs in both runs at step 0 (zero state)
    s0 = next(t for _, t in soft if t.layer == 0).forget[0]
    h0 = next(t for _, t in hard if t.layer == 0).forget[0]
    torch.testing.assert_close(h0, (s0 >= 0.5).to(h0.dtype), rtol=0, atol=0)


def test_plain_lstm_and_models_without_noisy_gates(lstm_model, g2_model, batches, forward) -> None:
    for model in (lstm_model(), g2_model(noisy_gates=(), noise_p=0.0)):
        result = check_binary_gates(model, batches[:1], forward)
        assert result["binary"], result


def test_hard_gate_eval_reports_soft_hard_and_delta(g2_model, batches, forward) -> None:
    model = g2_model()

    def perplexity(m: torch.nn.Module) -> float:
        m.eval()
        with torch.no_grad():
            return math.exp(sum(float(forward(m, b)) for b in batches) / len(batches))

    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = hard_gate_eval(model, perplexity)
    assert res["soft"] == perplexity(model)
    assert res["hard"] == perplexity(hard_gate_model(model))
    assert res["delta"] == pytest.approx(res["hard"] - res["soft"])
    assert res["relative"] == pytest.approx(res["delta"] / res["soft"])
    assert res["hard"] != res["soft"]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ConfigError):
        hard_gate_model(model, gates=("cell",))


def test_metric_direction_in_results_and_wording(g2_model) -> None:
    from g2lstm.analysis.report import hard_gate_sentence

    model = g2_model()
    scores = iter([30.0, 24.0, 30.0, 24.0])  # soft then hard, twice

    def bleu(m: torch.nn.Module) -> float:
        return next(scores)

    up = hard_gate_eval(model, bleu, higher_is_better=True)
    assert up["higher_is_better"] and up["degradation"] == pytest.approx(6.0)
    down = hard_gate_eval(model, bleu, higher_is_better=False)
    assert down["degradation"] == pytest.approx(-6.0)
    assert "degradation" not in hard_gate_eval(model, lambda m: 1.0)
    text = hard_gate_sentence(
        {"G2": up, "LSTM": {"soft": 20.0, "hard": 21.0, "relative": 0.05}}, "BLEU", True
    )
    assert text == (
        "G2: BLEU 30 → 24 (-20.0%, worse) with exactly 0/1 gates, against "
        "BLEU 20 → 21 (+5.0%, better) for LSTM. Higher BLEU is better."
    )
    ppl = hard_gate_sentence({"LM": {"soft": 80.0, "hard": 80.0, "relative": 0.0}}, "ppl", False)
    assert ppl.endswith("(+0.0%, unchanged) with exactly 0/1 gates. Lower ppl is better.")
    assert "better" not in hard_gate_sentence({"LM": up}, "metric")
