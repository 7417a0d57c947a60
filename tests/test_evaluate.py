import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

import harness.evaluate as E
import harness.metrics as M
import harness.scores as S

OOD_KEYS = ("auroc", "aupr@ood", "fpr95@ood", "aupr@id", "fpr95@id",
            "calib/rms", "calib/mad", "calib/rms_all_bins", "calib/mad_all_bins", "calib/soft_f1")
ID_KEYS = ("accuracy", "calib/rms", "calib/mad", "calib/rms_all_bins", "calib/mad_all_bins", "calib/soft_f1",
           "calib/ece", "calib/ece10", "calib/adaptive_ece", "calib/nll", "calib/brier", "error_detection/auroc")


def two_class(values):
    """Logits [v, 0]: max_logit = v for v > 0, predicted class 0."""
    values = np.asarray(values, dtype=float)
    return np.stack([values, np.zeros_like(values)], axis=1)


def random_problem(seed=0, n_id=300, ood_sizes=(400,), classes=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n_id)
    logits = rng.normal(size=(n_id, classes))
    logits[np.arange(n_id), labels] += rng.uniform(0, 4, n_id)
    ood = {f"set{i}": rng.normal(size=(n, classes)) * 0.8 for i, n in enumerate(ood_sizes)}
    return logits, labels, ood


def naive_calibration(conf, correct, beta=100, skip_top=True, l2=True):
    order = np.argsort(conf, kind="stable")
    conf, correct = conf[order], correct[order].astype(float)
    n = len(conf)
    bins = [(i * beta, (i + 1) * beta) for i in range(n // beta)]
    bins[-1] = (bins[-1][0], n)
    if skip_top:
        bins = bins[:-1]
    total = 0.0
    for lo, hi in bins:
        gap = abs(conf[lo:hi].mean() - correct[lo:hi].mean())
        total += (hi - lo) / n * (gap ** 2 if l2 else gap)
    return math.sqrt(total) if l2 else total


# -------------------------------------------------------------- hand-built


def test_hand_built_detection_metrics():
    id_logits = two_class(np.arange(1, 21))  # ID scores 1..20
    labels = np.zeros(20, dtype=int)
    labels[[0, 5]] = 1  # two wrong predictions
    ood = {"near": two_class([0.5, 1.5, 2.5, 3.5]), "far": two_class([0.1, 0.2, 0.3, 0.4])}
    rep = E.evaluate_arrays(id_logits, labels, ood, S.get("max_logit"), num_to_avg=3, seed=7)
    m = {k: v["mean"] for k, v in rep.metrics.items()}
    # "near": 20 // 5 = 4 drawn = the whole set, every repetition.
    assert m["ood/near/auroc"] == pytest.approx(100 * (20 + 19 + 18 + 17) / 80)
    assert m["ood/near/fpr95@ood"] == pytest.approx(100 * 3 / 20)  # ID 1, 2, 3 at full OOD recall
    # ID recall 19/20 = 0.95 exactly; the reference takes the lowest threshold with that
    # recall (just above ID score 1), so OOD 1.5, 2.5 and 3.5 are all accepted.
    assert m["ood/near/fpr95@id"] == pytest.approx(100 * 3 / 4)
    aupr_out = (1 + Fraction(2, 3) + Fraction(3, 5) + Fraction(4, 7)) / 4
    aupr_in = (17 + Fraction(18, 19) + Fraction(19, 21) + Fraction(20, 23)) / 20
    assert m["ood/near/aupr@ood"] == pytest.approx(100 * float(aupr_out))
    assert m["ood/near/aupr@id"] == pytest.approx(100 * float(aupr_in))
    for key in ("auroc", "aupr@ood", "aupr@id"):
        assert m[f"ood/far/{key}"] == pytest.approx(100.0)
        assert m[f"ood/mean/{key}"] == pytest.approx((m[f"ood/near/{key}"] + 100.0) / 2)
    assert m["ood/far/fpr95@ood"] == 0.0 and m["ood/far/fpr95@id"] == 0.0
    for name in ("near", "far", "mean"):
        for key in OOD_KEYS[:5]:
            assert rep.metrics[f"ood/{name}/{key}"]["std"] == 0.0
            assert rep.metrics[f"ood/{name}/{key}"]["n"] == 3
    assert m["accuracy"] == pytest.approx(90.0)
    assert rep.metrics["accuracy"] == {"mean": pytest.approx(90.0), "std": 0.0, "n": 1}
    assert "error_detection/auroc" in m
    # 20 (+4) examples: too few for 100-example calibration bins, so those keys are left out.
    for key in ("calib/rms", "calib/mad", "calib/rms_all_bins", "calib/mad_all_bins"):
        assert key not in m and f"ood/near/{key}" not in m and f"ood/mean/{key}" not in m
    assert {"calib/ece", "calib/ece10", "calib/adaptive_ece", "calib/soft_f1", "ood/near/calib/soft_f1"} <= set(m)
    assert rep.ood_sets == {"near": {"n_samples": 4, "n_available": 4}, "far": {"n_samples": 4, "n_available": 4}}
    assert rep.score == {"name": "max_logit", "params": {}}
    assert (rep.num_to_avg, rep.seed, rep.n_id) == (3, 7, 20)


def test_detection_agrees_with_sklearn_on_a_whole_small_set():
    logits, labels, ood = random_problem(1, n_id=200, ood_sizes=(40,))
    rep = E.evaluate_arrays(logits, labels, ood, S.get("energy"), num_to_avg=2)
    id_s, ood_s = S.get("energy").score(logits=logits), S.get("energy").score(logits=ood["set0"])
    is_ood = np.r_[np.zeros(200), np.ones(40)]
    both = np.r_[id_s, ood_s]
    m = rep.metrics
    assert m["ood/set0/auroc"]["mean"] == pytest.approx(100 * roc_auc_score(is_ood, -both))
    assert m["ood/set0/aupr@ood"]["mean"] == pytest.approx(100 * average_precision_score(is_ood, -both))
    assert m["ood/set0/aupr@id"]["mean"] == pytest.approx(100 * average_precision_score(1 - is_ood, both))


def test_calibration_in_distribution_and_under_ood():
    logits, labels, ood = random_problem(2, n_id=300, ood_sizes=(60,))
    rep = E.evaluate_arrays(logits, labels, ood, S.get("msp"), num_to_avg=2)
    probs = S.softmax(logits)
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    ood_conf = S.softmax(ood["set0"]).max(axis=1)
    all_conf = np.r_[conf, ood_conf]
    all_correct = np.r_[correct, np.zeros(60, dtype=bool)]
    m = {k: v["mean"] for k, v in rep.metrics.items()}
    for prefix, (c, ok) in {"": (conf, correct), "ood/set0/": (all_conf, all_correct)}.items():
        assert m[prefix + "calib/rms"] == pytest.approx(100 * naive_calibration(c, ok))
        assert m[prefix + "calib/mad"] == pytest.approx(100 * naive_calibration(c, ok, l2=False))
        assert m[prefix + "calib/rms_all_bins"] == pytest.approx(100 * naive_calibration(c, ok, skip_top=False))
        assert m[prefix + "calib/mad_all_bins"] == pytest.approx(
            100 * naive_calibration(c, ok, skip_top=False, l2=False))
        wrong = ~ok
        assert m[prefix + "calib/soft_f1"] == pytest.approx(100 * 2 * np.sum((1 - c) * wrong) / np.sum(1 - c + wrong))
    assert m["accuracy"] == pytest.approx(100 * correct.mean())
    assert m["calib/nll"] == pytest.approx(-np.mean(np.log(probs[np.arange(300), labels])))
    assert m["calib/brier"] == pytest.approx(np.mean(((probs - np.eye(4)[labels]) ** 2).sum(axis=1)))
    assert m["calib/ece"] == pytest.approx(100 * M.ece(conf, correct, n_bins=15))
    assert m["calib/ece10"] == pytest.approx(100 * M.ece(conf, correct, n_bins=10))
    assert m["error_detection/auroc"] == pytest.approx(100 * roc_auc_score(~correct, -conf))
    assert set(ID_KEYS) <= set(m)
    assert rep.curves["reliability"] == M.reliability_bins(conf, correct, n_bins=15)


def test_percent_convention_on_perfect_separation():
    id_logits = two_class(np.linspace(5, 9, 50))
    rep = E.evaluate_arrays(id_logits, np.zeros(50, dtype=int), {"x": two_class(np.linspace(0.1, 1, 30))},
                            S.get("max_logit"))
    m = rep.metrics
    for key in ("auroc", "aupr@ood", "aupr@id"):
        assert m[f"ood/x/{key}"] == {"mean": 100.0, "std": 0.0, "n": 5}
    assert m["ood/x/fpr95@ood"]["mean"] == 0.0 and m["ood/x/fpr95@id"]["mean"] == 0.0
    assert m["accuracy"]["mean"] == 100.0
    assert "error_detection/auroc" not in m  # undefined: nothing is wrong
    roc = rep.curves["roc"]["x"]
    assert roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0 and len(roc["fpr"]) <= 101


# ---------------------------------------------------- sampling protocol


def test_sample_counts_and_small_sets():
    logits, labels, _ = random_problem(3, n_id=53)
    rng = np.random.default_rng(0)
    ood = {"big": rng.normal(size=(1000, 4)), "small": rng.normal(size=(3, 4)), "exact": rng.normal(size=(10, 4))}
    rep = E.evaluate_arrays(logits, labels, ood, S.get("msp"), num_to_avg=2)
    assert rep.ood_sets == {"big": {"n_samples": 10, "n_available": 1000},
                            "small": {"n_samples": 3, "n_available": 3},
                            "exact": {"n_samples": 10, "n_available": 10}}


def test_draws_are_without_replacement_seeded_and_per_set():
    draws = E.ood_draws(1000, 5000, 5, 0, "gaussian")
    assert len(draws) == 5
    for idx in draws:
        assert len(idx) == 1000
        assert len(np.unique(idx)) == len(idx)
    small = E.ood_draws(30, 500, 3, 0, "a")
    assert all(len(np.unique(d)) == len(d) == 30 for d in small)
    big = E.ood_draws(10_000, 500, 3, 0, "a")
    assert all(len(np.unique(d)) == 100 for d in big)
    assert not np.array_equal(big[0], big[1])
    again = E.ood_draws(10_000, 500, 3, 0, "a")
    assert all(np.array_equal(a, b) for a, b in zip(big, again))
    assert not np.array_equal(E.ood_draws(10_000, 500, 1, 1, "a")[0], big[0])
    assert not np.array_equal(E.ood_draws(10_000, 500, 1, 0, "b")[0], big[0])


def test_repetition_stats_are_mean_and_population_std_over_draws():
    logits, labels, ood = random_problem(4, n_id=250, ood_sizes=(500,))
    msp = S.get("msp")
    rep = E.evaluate_arrays(logits, labels, ood, msp, num_to_avg=4, seed=3)
    id_s, ood_s = msp.score(logits=logits), msp.score(logits=ood["set0"])
    values = [M.auroc(id_s, ood_s[idx]) for idx in E.ood_draws(500, 250, 4, 3, "set0")]
    assert len(set(values)) > 1
    assert rep.metrics["ood/set0/auroc"] == {"mean": pytest.approx(100 * np.mean(values)),
                                             "std": pytest.approx(100 * np.std(values, ddof=0)), "n": 4}
    first = E.ood_draws(500, 250, 1, 3, "set0")[0]
    fpr, tpr = M.roc_curve_points(id_s, ood_s[first])
    assert rep.curves["roc"]["set0"] == {"fpr": fpr, "tpr": tpr}


def test_mean_over_sets():
    logits, labels, ood = random_problem(5, n_id=250, ood_sizes=(400, 300, 90))
    rep = E.evaluate_arrays(logits, labels, ood, S.get("msp"), num_to_avg=3)
    for key in OOD_KEYS:
        per = [rep.metrics[f"ood/{s}/{key}"] for s in ood]
        assert rep.metrics[f"ood/mean/{key}"] == {"mean": pytest.approx(np.mean([p["mean"] for p in per])),
                                                  "std": pytest.approx(np.mean([p["std"] for p in per])), "n": 3}


def test_deterministic_under_seed_and_independent_of_other_sets():
    logits, labels, ood = random_problem(6, n_id=250, ood_sizes=(500, 500))
    run = lambda sets, seed: E.evaluate_arrays(logits, labels, sets, S.get("msp"), num_to_avg=3, seed=seed)
    a = run(ood, 11)
    assert run(ood, 11).to_json() == a.to_json()
    assert run(ood, 12).metrics["ood/set0/auroc"] != a.metrics["ood/set0/auroc"]
    alone = run({"set0": ood["set0"]}, 11)
    assert all(alone.metrics[k] == v for k, v in a.metrics.items() if k.startswith("ood/set0/"))
    reordered = run({"set1": ood["set1"], "set0": ood["set0"]}, 11)
    assert reordered.metrics == a.metrics


# ------------------------------------------------------------ scores


def test_feature_scores_and_precomputed_scores():
    rng = np.random.default_rng(7)
    logits, labels, ood = random_problem(7, n_id=100, ood_sizes=(50,))
    feats, ood_feats = rng.normal(size=(100, 6)), {"set0": rng.normal(size=(50, 6)) + 3}
    knn = S.get("knn", k=3).fit(rng.normal(size=(80, 6)), rng.integers(0, 4, 80))
    rep = E.evaluate_arrays(logits, labels, ood, knn, id_features=feats, ood_features=ood_feats, num_to_avg=2)
    same = E.evaluate_arrays(logits, labels, ood, S.get("msp"), num_to_avg=2,
                             id_scores=knn.score(features=feats),
                             ood_scores={"set0": knn.score(features=ood_feats["set0"])})
    assert rep.metrics["ood/set0/auroc"] == same.metrics["ood/set0/auroc"]
    assert rep.score == {"name": "knn", "params": {"k": 3}}
    with pytest.raises(ValueError, match="id_features: score 'knn' needs features"):
        E.evaluate_arrays(logits, labels, ood, knn)
    with pytest.raises(ValueError, match="ood_features: expected the same set names"):
        E.evaluate_arrays(logits, labels, ood, knn, id_features=feats, ood_features={"other": ood_feats["set0"]})
    with pytest.raises(ValueError, match="not fitted"):
        E.evaluate_arrays(logits, labels, ood, S.get("knn"), id_features=feats, ood_features=ood_feats)
    with pytest.raises(ValueError, match="needs the model"):
        E.evaluate_arrays(logits, labels, ood, S.get("odin"))
    with pytest.raises(ValueError, match="give both or neither"):
        E.evaluate_arrays(logits, labels, ood, S.get("msp"), id_scores=np.zeros(100))


# ---------------------------------------------------------- bad input


@pytest.mark.parametrize("change, fragment", [
    (lambda a: a.update(id_labels=np.zeros(99, dtype=int)), "id_labels: expected 100 labels"),
    (lambda a: a.update(id_labels=np.full(100, 9)), "id_labels: class index 9 out of range"),
    (lambda a: a["id_logits"].__setitem__((3, 1), np.nan), "id_logits: contains NaN"),
    (lambda a: a["ood"]["set0"].__setitem__((0, 0), np.inf), r"ood_logits\['set0'\]: contains NaN"),
    (lambda a: a["ood"].update(set0=np.zeros((0, 4))), r"ood_logits\['set0'\]: expected a non-empty"),
    (lambda a: a["ood"].update(set0=np.zeros((5, 3))), r"ood_logits\['set0'\]: expected 4 columns"),
    (lambda a: a["ood"].update(mean=np.zeros((5, 4))), "ood_logits: set name 'mean' is not allowed"),
    (lambda a: a["ood"].update({"a/b": np.zeros((5, 4))}), "ood_logits: set name 'a/b'"),
    (lambda a: a.update(ood={}), "ood_logits: expected a non-empty mapping"),
    (lambda a: a.update(id_logits=a["id_logits"][:4], id_labels=a["id_labels"][:4]), "at least 5 ID"),
    (lambda a: a.update(num_to_avg=0), "num_to_avg"),
    (lambda a: a.update(seed=-1), "seed"),
    (lambda a: a.update(score="msp"), "score: expected a harness.scores.Score"),
])
def test_bad_input_names_the_argument(change, fragment):
    logits, labels, ood = random_problem(8, n_id=100, ood_sizes=(50,))
    args = {"id_logits": logits, "id_labels": labels, "ood": ood, "score": S.get("msp"), "num_to_avg": 2, "seed": 0}
    change(args)
    with pytest.raises(ValueError, match=fragment):
        E.evaluate_arrays(args["id_logits"], args["id_labels"], args["ood"], args["score"],
                          num_to_avg=args["num_to_avg"], seed=args["seed"])


# ----------------------------------------------------------------- Report


def test_report_json_round_trip():
    logits, labels, ood = random_problem(9, n_id=260, ood_sizes=(400, 20))
    rep = E.evaluate_arrays(logits, labels, ood, S.get("energy", temperature=2.0), num_to_avg=3, seed=4)
    data = rep.to_json()
    text = json.dumps(data, allow_nan=False)
    back = E.Report.from_json(json.loads(text))
    assert back == rep
    assert back.to_json() == data
    assert json.dumps(back.to_json(), allow_nan=False) == text
    data["metrics"]["accuracy"]["mean"] = -1.0  # to_json hands out a copy
    assert rep.metrics["accuracy"]["mean"] != -1.0
    assert set(data) == {"metrics", "ood_sets", "curves", "score", "num_to_avg", "seed", "n_id"}
    assert set(data["curves"]) == {"roc", "reliability"}
    assert data["score"] == {"name": "energy", "params": {"temperature": 2.0}}


@pytest.mark.parametrize("change, fragment", [
    (lambda d: d.pop("n_id"), "missing field"),
    (lambda d: d.update(seed="0"), "report.seed"),
    (lambda d: d.update(metrics=[]), "report.metrics"),
    (lambda d: d["metrics"].update(accuracy={"mean": 1.0}), r"report.metrics\['accuracy'\]"),
])
def test_report_from_json_rejects_malformed(change, fragment):
    logits, labels, ood = random_problem(10, n_id=50, ood_sizes=(20,))
    data = E.evaluate_arrays(logits, labels, ood, S.get("msp"), num_to_avg=1).to_json()
    change(data)
    with pytest.raises(ValueError, match=fragment):
        E.Report.from_json(data)


# ------------------------------------------------------------ model layer


class Tiny(torch.nn.Module):
    def __init__(self, head=True):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.5))
        head_layer = torch.nn.Linear(8, 3)
        if head:
            self.fc = head_layer
        else:
            self.head = head_layer

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return (self.fc if hasattr(self, "fc") else self.head)(self.features(x))


class NoFeatures(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))

    def forward(self, x):
        return self.net(x)


def inputs(n, seed=0, shift=0.0):
    return torch.randn(n, 3, 2, 2, generator=torch.Generator().manual_seed(seed)) + shift


def test_collect_outputs_matches_forward_in_eval_mode():
    x = inputs(10)
    for model in (Tiny(), Tiny(head=False)):
        model.train()
        logits, feats = E.collect_outputs(model, x, batch_size=3)
        assert model.training
        model.eval()
        with torch.no_grad():
            np.testing.assert_allclose(logits, model(x).double().numpy(), rtol=1e-6)
            np.testing.assert_allclose(feats, model.features(x).numpy(), rtol=1e-6)
        assert logits.dtype == np.float64 and feats.dtype == np.float32 and feats.shape == (10, 8)
    logits, feats = E.collect_outputs(NoFeatures(), x)
    assert feats is None and logits.shape == (10, 3)


def test_collect_outputs_rejects_bad_input():
    with pytest.raises(ValueError, match="x: expected a non-empty float tensor"):
        E.collect_outputs(Tiny(), torch.zeros(0, 3, 2, 2))
    with pytest.raises(ValueError, match="x: expected a non-empty float tensor"):
        E.collect_outputs(Tiny(), np.zeros((2, 3, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        E.collect_outputs(Tiny(), inputs(2), batch_size=0)


def test_evaluate_model_equals_arrays_path():
    model = Tiny()
    id_x, id_y = inputs(40, 1), torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(2))
    ood = {"shifted": inputs(30, 3, shift=4.0), "noise": inputs(5, 4)}
    rep = E.evaluate_model(model, id_x, id_y, ood, S.get("msp"), num_to_avg=2, seed=1, batch_size=7)
    logits, _ = E.collect_outputs(model, id_x)
    ood_logits = {k: E.collect_outputs(model, v)[0] for k, v in ood.items()}
    expected = E.evaluate_arrays(logits, id_y.numpy(), ood_logits, S.get("msp"), num_to_avg=2, seed=1)
    assert rep.metrics.keys() == expected.metrics.keys()
    for key, stat in expected.metrics.items():
        assert rep.metrics[key]["mean"] == pytest.approx(stat["mean"], rel=1e-6, abs=1e-9)
    assert rep.ood_sets == {"shifted": {"n_samples": 8, "n_available": 30}, "noise": {"n_samples": 5, "n_available": 5}}


def test_evaluate_model_fits_feature_scores_and_runs_odin():
    model = Tiny()
    id_x, id_y = inputs(40, 1), torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(2))
    ood = {"shifted": inputs(30, 3, shift=4.0)}
    with pytest.raises(ValueError, match="fit_x, fit_y"):
        E.evaluate_model(model, id_x, id_y, ood, S.get("knn", k=2))
    knn = S.get("knn", k=2)
    rep = E.evaluate_model(model, id_x, id_y, ood, knn, fit_x=inputs(20, 5), fit_y=torch.zeros(20, dtype=torch.long))
    assert knn.fitted and rep.score["name"] == "knn"
    odin = E.evaluate_model(model, id_x, id_y, ood, S.get("odin", temperature=1.0, epsilon=0.0), num_to_avg=2)
    msp = E.evaluate_model(model, id_x, id_y, ood, S.get("msp"), num_to_avg=2)
    for key in ("auroc", "aupr@ood", "fpr95@id"):
        assert odin.metrics[f"ood/shifted/{key}"]["mean"] == pytest.approx(msp.metrics[f"ood/shifted/{key}"]["mean"])
    with pytest.raises(ValueError, match=r"ood_sets\['bad'\]: expected a non-empty float tensor"):
        E.evaluate_model(model, id_x, id_y, {"bad": torch.zeros(0, 3, 2, 2)}, S.get("msp"))
    with pytest.raises(ValueError, match="id_test_y: expected 40 labels"):
        E.evaluate_model(model, id_x, id_y[:10], ood, S.get("msp"))


def test_evaluate_model_names_the_set_with_nan_outputs():
    class Broken(NoFeatures):
        def forward(self, x):
            out = super().forward(x)
            return torch.where(x.flatten(1)[:, :1] > 50, torch.nan, out)

    ood = {"fine": inputs(10, 1), "broken": inputs(10, 2, shift=100.0)}
    with pytest.raises(ValueError, match=r"ood_logits\['broken'\]: contains NaN"):
        E.evaluate_model(Broken(), inputs(20), torch.zeros(20, dtype=torch.long), ood, S.get("msp"))
    with pytest.raises(ValueError, match="model: score 'knn' needs model.features"):
        E.evaluate_model(Broken(), inputs(20), torch.zeros(20, dtype=torch.long), ood, S.get("knn"))
