"""Specification of explorer.architecture: counts, tree, style routing and data flow measured on the real KModel."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from kokoro.istftnet import AdaIN1d
from kokoro.modules import AdaLayerNorm

from explorer import architecture
from explorer.architecture import SEED_BERT_CLAIMS, ExpectationCheck, module_weight_stats, summarize
from explorer.engines.model import build_model
from explorer.errors import AnalysisError
from tests.conftest import one_frame_per_token, small_config

TOP_LEVEL = ["bert", "bert_encoder", "predictor", "text_encoder", "decoder"]


def parameter_count(module: torch.nn.Module) -> int:
    return sum(param.numel() for param in module.parameters())


@pytest.fixture(scope="module")
def small_model(offline):
    model = build_model(small_config())
    one_frame_per_token(model)
    return model


@pytest.fixture(scope="module")
def small(small_model):
    return summarize(small_model)


@pytest.fixture(scope="module")
def full_model(offline):
    model = build_model()
    one_frame_per_token(model)
    return model


@pytest.fixture(scope="module")
def full(full_model):
    return summarize(full_model)


# --- counts and tree ------------------------------------------------------------------------------------------------


def test_total_is_the_sum_over_the_model_parameters(small_model, small):
    assert small.total_params == parameter_count(small_model)


def test_each_top_level_module_counts_its_own_parameters(small_model, small):
    assert [module.name for module in small.modules] == TOP_LEVEL
    for module in small.modules:
        assert module.params == parameter_count(getattr(small_model, module.name))
        assert module.module_type == type(getattr(small_model, module.name)).__name__


def test_shares_sum_to_one(small):
    assert math.isclose(sum(module.share for module in small.modules), 1.0, rel_tol=1e-12)
    assert all(0 < module.share < 1 for module in small.modules)


def test_every_tree_node_totals_its_own_and_its_childrens_parameters(small_model, small):
    for node in small.nodes:
        children = [small.node(path) for path in node.children]
        assert node.total_params == node.own_params + sum(child.total_params for child in children)
        assert all(child.depth == node.depth + 1 for child in children)
        module = small_model if node.depth == 0 else small_model.get_submodule(node.path)
        assert node.own_params == sum(param.numel() for param in module.parameters(recurse=False))
    assert small.nodes[0].total_params == small.total_params


def test_tree_reaches_the_deepest_modules_and_can_be_cut(small_model, small):
    paths = {node.path for node in small.nodes}
    assert {path for path, _ in small_model.named_modules() if path} <= paths
    fc = small.node("decoder.generator.resblocks.0.adain1.0.fc")
    assert fc.own_params == fc.total_params == parameter_count(small_model.decoder.generator.resblocks[0].adain1[0].fc)
    assert {node.depth for node in small.tree(1)} == {0, 1}
    assert [node.path for node in small.tree(1)][1:] == TOP_LEVEL
    assert len(small.tree()) == len(small.nodes) > len(small.tree(3))


def test_unknown_tree_path_is_an_analysis_error(small):
    with pytest.raises(AnalysisError):
        small.node("decoder.nowhere")


# --- style routing --------------------------------------------------------------------------------------------------


def test_decoder_half_is_read_only_inside_the_decoder(small):
    half = small.half("decoder")
    assert (half.start, half.stop) == (0, small.style_dim)
    assert half.top_level == ("decoder",)
    assert half.entry_points == ("decoder",)
    assert half.consumers and all(consumer.path.startswith("decoder.") for consumer in half.consumers)


def test_prosody_half_is_read_only_inside_the_predictor(small):
    half = small.half("prosody")
    assert (half.start, half.stop) == (small.style_dim, 2 * small.style_dim)
    assert half.top_level == ("predictor",)
    assert half.consumers and all(consumer.path.startswith("predictor.") for consumer in half.consumers)
    assert "predictor.text_encoder" in half.entry_points


def test_every_adaptive_norm_reads_the_half_of_its_branch(small_model, small):
    """Cross-check of the trace from the code's side: each AdaIN/AdaLayerNorm style projection, and each LSTM fed
    [features, style], shows up as a reader of the half its branch gets, and nothing else does."""
    style_dim = small.style_dim
    norms = {
        f"{path}.fc": path.split(".")[0]
        for path, module in small_model.named_modules()
        if isinstance(module, (AdaIN1d, AdaLayerNorm))
    }
    assert all(small_model.get_submodule(path).in_features == style_dim for path in norms)
    fed_style = small_model.predictor.lstm.hidden_size * 2 + style_dim
    lstms = {
        path
        for path, module in small_model.predictor.named_modules(prefix="predictor")
        if isinstance(module, torch.nn.LSTM) and module.input_size == fed_style
    }
    expected = {
        "decoder": {path for path, branch in norms.items() if branch == "decoder"},
        "prosody": {path for path, branch in norms.items() if branch == "predictor"} | lstms,
    }
    for name, paths in expected.items():
        consumers = small.half(name).consumers
        assert {consumer.path for consumer in consumers} == paths
        assert {consumer.how for consumer in consumers if consumer.path in lstms} <= {"concatenated"}
    assert sum(small.half("prosody").consumer_types().values()) == len(expected["prosody"])


def test_unknown_half_is_an_analysis_error(small):
    with pytest.raises(AnalysisError):
        small.half("both")


# --- data flow ------------------------------------------------------------------------------------------------------


def test_data_flow_runs_from_tokens_to_24khz_audio(small_model, small):
    flow = small.data_flow
    config = small_config()
    assert flow.steps[0].name == "tokens" and flow.steps[0].output == (1, flow.n_tokens)
    assert flow.n_tokens == len(architecture.TRACE_PHONEMES) + 2
    assert flow.steps[-1].name == "audio" and flow.steps[-1].output == (flow.n_samples,)
    assert flow.sample_rate == 24000
    upsampling = 2 * math.prod(config["istftnet"]["upsample_rates"]) * config["istftnet"]["gen_istft_hop_size"]
    assert flow.samples_per_frame == upsampling
    assert flow.n_frames == flow.n_tokens  # the silenced duration head gives one frame per token
    assert [step.order for step in flow.steps] == list(range(1, len(flow.steps) + 1))


def test_data_flow_steps_follow_kokoro_forward_order_with_measured_shapes(small):
    flow = small.data_flow
    top = [step.name for step in flow.steps if step.depth == 1]
    order = [
        "tokens",
        "bert",
        "bert_encoder",
        "predictor.text_encoder",
        "predictor.lstm",
        "predictor.duration_proj",
        "alignment",
        "predictor.shared",
        "text_encoder",
        "decoder",
        "audio",
    ]
    assert [name for name in top if name in order] == order
    steps = {step.name: step for step in flow.steps}
    assert steps["bert"].output == (1, flow.n_tokens, small_config()["plbert"]["hidden_size"])
    assert steps["alignment"].output == (flow.n_tokens, flow.n_frames)
    assert steps["decoder"].output[-1] == flow.n_samples
    assert steps["decoder"].style == "decoder" and steps["predictor.lstm"].style == "prosody"
    assert steps["bert"].style is None and steps["text_encoder"].style is None


def test_trace_leaves_the_global_random_state_alone(small_model):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    summarize(small_model, phonemes="I")
    assert torch.equal(torch.rand(3), expected)


def test_phonemes_outside_the_vocabulary_are_an_analysis_error(small_model):
    with pytest.raises(AnalysisError, match="vocabulary"):
        summarize(small_model, phonemes="§§")


# --- weight statistics ----------------------------------------------------------------------------------------------


def test_weight_stats_describe_every_parameter_value(small_model, small):
    stats = {entry.name: entry for entry in module_weight_stats(small_model)}
    assert list(stats) == TOP_LEVEL and small.weight_stats == tuple(stats.values())
    for name in ("bert_encoder", "text_encoder"):
        values = np.concatenate(
            [param.detach().double().numpy().ravel() for param in getattr(small_model, name).parameters()]
        )
        assert stats[name].count == values.size
        assert stats[name].mean == pytest.approx(values.mean(), rel=1e-9, abs=1e-12)
        assert stats[name].std == pytest.approx(values.std(), rel=1e-9)
        assert stats[name].abs_max == pytest.approx(np.abs(values).max())


# --- output ---------------------------------------------------------------------------------------------------------


def test_to_json_is_plain_json_with_the_documented_keys(small):
    data = json.loads(json.dumps(small.to_json()))
    assert set(data) == {
        "kokoro_version",
        "weights",
        "total_params",
        "style_dim",
        "modules",
        "expectations",
        "style_halves",
        "data_flow",
        "weight_stats",
        "tree",
        "bert",
    }
    assert data["total_params"] == small.total_params
    assert [module["name"] for module in data["modules"]] == TOP_LEVEL
    assert set(data["style_halves"]) == {"decoder", "prosody"}
    assert data["data_flow"]["sample_rate"] == 24000 and data["data_flow"]["steps"][-1]["name"] == "audio"
    assert len(data["tree"]) == len(small.nodes)
    assert data["bert"]["hidden_size"] == small.bert.hidden_size and data["bert"]["distinct_layers"] == 1
    assert [row["figure"] for row in data["bert"]["seed"]] == [figure for figure, *_ in SEED_BERT_CLAIMS]


@pytest.mark.parametrize(
    ("measured", "verdict"), [(0.05, "below"), (0.40, "within"), (0.45, "within"), (0.50, "within"), (0.6, "above")]
)
def test_expectation_verdict_compares_with_the_range(measured, verdict):
    assert ExpectationCheck("BERT", ("bert",), 0.40, 0.50, measured).verdict == verdict


def test_expectations_use_the_measured_shares(small):
    shares = {module.name: module.share for module in small.modules}
    for check in small.expectation_checks():
        assert check.measured == sum(shares[name] for name in check.modules)


# --- full size ------------------------------------------------------------------------------------------------------


def test_full_model_counts_come_from_the_object(full_model, full):
    assert full.total_params == parameter_count(full_model)
    for module in full.modules:
        assert module.params == parameter_count(getattr(full_model, module.name))
    assert full.half("decoder").top_level == ("decoder",) and full.half("prosody").top_level == ("predictor",)


def test_report_states_measured_shares_and_where_they_differ_from_the_seed(full):
    report = full.report_text()
    assert f"Total parameters: {full.total_params:,}" in report
    for module in full.modules:
        assert f"{module.params:,}" in report and f"{100 * module.share:.1f} %" in report
    lines = report.splitlines()
    for check in full.expectation_checks():
        line = next(line for line in lines if line.strip().startswith(f"{check.label} ("))
        assert ("DIFFERS" in line) == (check.verdict != "within")
        assert f"{100 * check.measured:.1f} %" in line
    held = sum(check.verdict == "within" for check in full.expectation_checks())
    assert f"{held} of {len(full.expectation_checks())} expectations hold" in report
    assert "style[0:128] (decoder half) -> read only inside: decoder" in report
    assert "style[128:256] (prosody half) -> read only inside: predictor" in report
    assert "Audio: 24000 Hz" in report
    assert "decoder (Decoder)" in report and "decoder.generator" not in report.split("Weight statistics")[0]
    assert "decoder.generator (Generator)" in full.report_text(flow_depth=2)


# --- PL-BERT --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grouped_model(offline):
    """A small model whose ALBERT runs 4 layers on 2 groups of parameters (each group reused by 2 layers)."""
    config = small_config()
    config["plbert"].update(num_hidden_layers=4, num_hidden_groups=2)
    model = build_model(config)
    one_frame_per_token(model)
    return model


def test_bert_figures_are_read_off_the_modules(small_model, small):
    bert, plbert = small.bert, small_config()["plbert"]
    words = small_model.bert.embeddings.word_embeddings.weight
    assert (bert.vocab_size, bert.embedding_size) == tuple(words.shape) == (small_config()["n_token"], 128)
    assert bert.vocab_symbols == len(small_model.vocab) < bert.vocab_size
    assert (bert.hidden_size, bert.attention_heads, bert.intermediate_size, bert.max_positions, bert.layers) == (
        plbert["hidden_size"], plbert["num_attention_heads"], plbert["intermediate_size"],
        plbert["max_position_embeddings"], plbert["num_hidden_layers"])
    assert bert.head_size * bert.attention_heads == bert.hidden_size
    assert bert.params == parameter_count(small_model.bert) == small.node("bert").total_params
    assert bert.pooler_params == parameter_count(small_model.bert.pooler)
    assert bert.layer_calls == bert.layers == 1 and bert.unshared_params == bert.params


def test_shared_layers_are_counted_in_the_trace(grouped_model):
    """4 layers run on 2 groups: 2 distinct layers, each reused twice, and BERT without sharing would hold 2 more."""
    bert = summarize(grouped_model).bert
    groups = grouped_model.bert.encoder.albert_layer_groups
    assert (bert.layers, bert.layer_calls, bert.hidden_groups, bert.layers_per_group) == (4, 4, 2, 1)
    assert (bert.distinct_layers, bert.layers_per_shared_set) == (2, 2)
    assert bert.shared_layer_params == parameter_count(groups)
    assert bert.unshared_params == bert.params + parameter_count(groups)
    total = parameter_count(grouped_model)
    assert bert.unshared_share == pytest.approx(bert.unshared_params / (total - bert.params + bert.unshared_params))


def test_bert_is_set_against_the_seed_description(small, full):
    assert [(row["figure"], row["verdict"]) for row in full.bert.seed_comparison()] == [
        ("vocab_size", "the seed gives no number"), ("hidden_size", "as the seed says")]
    assert [row["verdict"] for row in small.bert.seed_comparison()][1] == "differs"  # hidden size 64, not 768


def test_full_model_bert_figures_and_report(full_model, full):
    """Kokoro v1.0's PL-BERT: 178 ids embedded in 128 values, 768 wide, 12 heads, 12 layers on one shared layer."""
    bert = full.bert
    assert (bert.vocab_size, bert.embedding_size, bert.hidden_size, bert.attention_heads, bert.head_size) == (
        178, 128, 768, 12, 64)
    assert (bert.layers, bert.layer_calls, bert.distinct_layers, bert.intermediate_size, bert.max_positions) == (
        12, 12, 1, 2048, 512)
    assert bert.unshared_params == bert.params + 11 * bert.shared_layer_params
    assert 0.40 <= bert.unshared_share <= 0.50  # the seed's expected BERT share fits a BERT without sharing
    report = full.report_text()
    assert f"PL-BERT text encoder (bert, CustomAlbert, an ALBERT): {bert.params:,} parameters" in report
    assert "Vocabulary: 178 token ids (114 assigned to phoneme symbols), each embedded in 128 values" in report
    assert "Hidden size 768; 12 attention heads of 64 values; feed-forward 2048; up to 512 positions" in report
    assert "Layers: 12 run per pass (12 in the traced pass), sharing the parameters of 1 distinct layer" in report
    assert f"{100 * bert.unshared_share:.1f} % of a model that size (within the 40-50 %" in report
    assert "Hidden size: the seed says '768 (typical)'; measured 768; as the seed says" in report
    assert "Vocabulary size: the seed says 'configurable'; measured 178; the seed gives no number" in report
