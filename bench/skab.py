"""SKAB valve1 + valve2: leave-one-file-out cross-validation of every pipeline setting.

    python bench/skab.py

Per file (the leaderboard's split): the signals are smoothed by an exponentially weighted mean,
the detector is fitted on the first 400 rows and the rest is scored; scores become alarms by a
threshold fitted on the training rows, then a k-of-n persistence rule.

**Headline: leave-one-file-out (LOFO) over the 20 labelled files.** For each held-out file, these
settings are chosen on the other 19 files only, then applied to it (pooled F1 / FAR / MAR and
changepoint scores over the held-out files; false rows per file):
- signals: all 8; all but Temperature (the earlier hand choice); or all but the "slow" signals,
  those whose median lag-1 autocorrelation over the training files' first 400 raw rows exceeds
  0.8 (a generic rule, no signal named; it picks Temperature and Thermocouple in every fold);
- EWM span 10, 20 or 30;
- threshold: median + m x (max - median) of the file's training scores (m 0.8 ... 3), or a level
  on the detector's own scale, which pitstop's detectors normalise per file (PCA: 1 = training
  99th percentile; MAD: robust z), 16 values 1 ... 30 -- one cut-off pooled over files, or
  m x the peaks-over-threshold cut-off (`PotThreshold`, risk 1e-4, init_q 0.9, exponential tail
  at most) of the training scores (m 1 ... 3);
- persistence 1 of 1, 5 of 10, 10 of 20 rows.
The rule, fixed before the first cross-validated run: most pooled F1 on the training files with
their pooled FAR <= 10 % (5 points under the 15 % target, for the gap to unseen files); ties go to
the lower FAR; if nothing keeps to 10 %, the lowest FAR. The detector (PCA T2 on all components)
is not chosen here: it was fixed earlier on valve1. Also reported, for sensitivity only and fixed
in advance too: the same with FAR <= 15 %; a detector chosen per fold among pitstop PCA T2, T2+Q
and MAD; and a variant whose training FAR also counts the anomaly-free run, cut into 8 pieces of
1,150 rows treated like files (a 21-file LOFO: the anomaly-free pieces are then scored held out
in turn, with their neighbours left out of the choice as they are one run).

**Unseen normal running.** The anomaly-free run is used for no choice of the headline; the
settings the same rule picks on all 20 labelled files (the "final" entry) are scored on its
pieces. That is the check of the issue's complaint (on SKAB's other files, FAR 31 %): the
labelled files' test parts hold only about 170 normal rows either side of the fault, while
normal running that wanders away from its first 400 rows (accelerometers and flow rate drift by
several training standard deviations in the anomaly-free run) floods with false rows. On this
data no setting in the grid holds there (see bench/README.md for the numbers); a raw-noise
scale floor for the MAD detector was tried by hand on the anomaly-free pieces and did not help,
so it is not in the grid.

The earlier fixed pipeline (7 signals, span 20, margin 1.2, chosen by hand on valve1) still runs
for every detector, PyOD's and river's too when installed (`pip install -e .[bench]`), beside the
cross-validated figures, with its false-alarm rate on the anomaly-free pieces.
Prints JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from _common import dataset, emit, optional
from pitstop.ml.detectors import IsolationForestDetector, PcaDetector, ReconstructionDetector, RobustZScoreDetector
from pitstop.ml.evaluation import (
    SKAB_PROFILES,
    skab_changepoint_file,
    skab_changepoint_score,
    skab_outlier_metrics,
)
from pitstop.ml.thresholds import PotThreshold, k_of_n

TRAIN_ROWS = 400
SPAN = 20
MARGIN = 1.2
PERSIST = (1, 1)  # k of n rows flagged; (1, 1) keeps every flag (see bench/README.md)
ALL_SIGNALS = [
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
]
SIGNALS = [s for s in ALL_SIGNALS if s != "Temperature"]
HEADLINE = "pitstop.pca_t2"
CV_DETECTORS = ("pitstop.pca_t2", "pitstop.pca_t2q", "pitstop.mad")

Scorer = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (train, test) -> scores


def pitstop_scorer(make: Callable[[], object]) -> Scorer:
    def run(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        det = make().fit(train)  # type: ignore[attr-defined]
        return det.score(train), det.score(test)

    return run


def pyod_scorer(name: str) -> Scorer | None:
    if optional("pyod") is None:
        return None
    from pyod.models.ecod import ECOD
    from pyod.models.hbos import HBOS
    from pyod.models.iforest import IForest
    from pyod.models.pca import PCA

    cls = {"ECOD": ECOD, "HBOS": HBOS, "IForest": IForest, "PCA": PCA}[name]

    def run(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kwargs = {"random_state": 0} if name == "IForest" else {}
        det = cls(**kwargs).fit(train)
        return det.decision_function(train), det.decision_function(test)

    return run


def river_scorer() -> Scorer | None:
    if optional("river") is None:
        return None
    from river import anomaly

    def run(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = train.min(axis=0), train.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        model = anomaly.HalfSpaceTrees(n_trees=25, height=8, window_size=100, seed=0)
        rows = [dict(enumerate(r)) for r in ((train - lo) / span).tolist()]
        for x in rows:
            model.learn_one(x)
        train_scores = np.array([model.score_one(x) for x in rows])
        test_scores = np.array([model.score_one(dict(enumerate(r))) for r in ((test - lo) / span).tolist()])
        return train_scores, test_scores

    return run


def load() -> list[tuple[str, pd.DataFrame]]:
    files = []
    for group in ("valve1", "valve2"):
        folder = dataset(f"skab/data/{group}")
        for path in sorted(folder.glob("*.csv"), key=lambda p: int(p.stem)):
            files.append((group, pd.read_csv(path, sep=";", parse_dates=["datetime"])))
    return files


def evaluate(
    scorer: Scorer,
    files: list[tuple[str, pd.DataFrame]],
    signals: list[str] = SIGNALS,
    span: int = SPAN,
    margin: float = MARGIN,
) -> dict[str, object]:
    started = time.perf_counter()
    per_group: dict[str, list[tuple[np.ndarray, pd.DataFrame]]] = {"valve1": [], "valve2": []}
    for group, frame in files:
        smoothed = frame[signals].ewm(span=span).mean().to_numpy()
        train_scores, test_scores = scorer(smoothed[:TRAIN_ROWS], smoothed[TRAIN_ROWS:])
        middle = np.median(train_scores)
        flags = test_scores > middle + margin * (train_scores.max() - middle)
        predicted = k_of_n(flags, *PERSIST).astype(int)
        per_group[group].append((predicted, frame.iloc[TRAIN_ROWS:]))
    out: dict[str, object] = {"seconds": round(time.perf_counter() - started, 2)}
    subsets = {"all": per_group["valve1"] + per_group["valve2"], **per_group}
    for subset, parts in subsets.items():
        c = skab_outlier_metrics([(p, df["anomaly"].to_numpy()) for p, df in parts])
        cp = {}
        for profile_name, profile in SKAB_PROFILES.items():
            counts = [
                skab_changepoint_file(df["datetime"].to_numpy(), p, df["changepoint"].to_numpy(), profile)
                for p, df in parts
            ]
            cp[profile_name] = skab_changepoint_score(counts, profile)
        cp["missed"] = sum(f.missed for f in counts)
        cp["fps"] = sum(f.false_positives for f in counts)
        out[subset] = {**c.summary(), "changepoint": cp}
    return out


# -- leave-one-file-out ----------------------------------------------------------------------
# Every choosable setting of the pipeline, the grid each is chosen from, and the rule that
# chooses: all fixed before the first cross-validated run (see the module docstring).

CV_SPANS = (10, 20, 30)
CV_RULES: tuple[tuple[str, float], ...] = (
    *(("margin", m) for m in (0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0)),
    *(("level", float(c)) for c in np.round(np.geomspace(1.0, 30.0, 16), 2)),
    *(("pot", m) for m in (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)),
)
CV_PERSIST = ((1, 1), (5, 10), (10, 20))
SIGNAL_SETS = ("all", "no Temperature", "no slow signals")
SLOW_AUTOCORR = 0.8  # a signal is slow when its median lag-1 autocorrelation (raw, training rows) exceeds this
POT_RISK = 1e-4
FAR_LIMIT = 10.0  # the choosing rule: most F1 on the training files with their pooled FAR <= this
FREE_CHUNK = 1_150  # the anomaly-free run is cut into pieces as long as a labelled file


@dataclass
class Unit:
    """A file scored on its own: fitted on its first TRAIN_ROWS rows, its remaining rows scored."""

    name: str
    group: str  # valve1, valve2 or anomaly-free
    frame: pd.DataFrame

    @property
    def truth(self) -> np.ndarray:
        return self.frame["anomaly"].to_numpy()[TRAIN_ROWS:].astype(bool)


Setting = tuple[int, str, float, tuple[int, int]]  # span, threshold rule, its value, persistence


def settings() -> list[Setting]:
    return [(span, rule, value, persist) for span in CV_SPANS for rule, value in CV_RULES for persist in CV_PERSIST]


def load_units() -> tuple[list[Unit], list[Unit]]:
    """The labelled files, and the anomaly-free run cut into FREE_CHUNK-row pieces (all normal)."""
    labelled = [Unit(f"{g}/{i if g == 'valve1' else i - 16}", g, f) for i, (g, f) in enumerate(load())]
    free = pd.read_csv(dataset("skab/data/anomaly-free/anomaly-free.csv"), sep=";")
    free["anomaly"] = 0.0
    pieces = [free.iloc[k * FREE_CHUNK : (k + 1) * FREE_CHUNK] for k in range(len(free) // FREE_CHUNK)]
    chunks = [Unit(f"anomaly-free/{k}", "anomaly-free", p.reset_index(drop=True)) for k, p in enumerate(pieces)]
    return labelled, chunks


def slow_signals(units: list[Unit]) -> list[str]:
    """Signals whose median lag-1 autocorrelation over the units' training rows exceeds SLOW_AUTOCORR."""
    ac = np.array([[u.frame[s].iloc[:TRAIN_ROWS].autocorr(1) for s in ALL_SIGNALS] for u in units])
    return [s for s, r in zip(ALL_SIGNALS, np.nanmedian(ac, axis=0), strict=True) if r > SLOW_AUTOCORR]


def cutoff(train_scores: np.ndarray, rule: str, value: float, pot_cache: dict[int, float]) -> float:
    if rule == "margin":
        middle = float(np.median(train_scores))
        return middle + value * (float(train_scores.max()) - middle)
    if rule == "level":
        return value
    key = id(train_scores)
    if key not in pot_cache:
        pot_cache[key] = PotThreshold(risk=POT_RISK, init_q=0.9, max_shape=0.0).fit(train_scores).cutoff_
    return pot_cache[key] * value


class Table:
    """Per setting and unit, the confusion counts (tp, fp, tn, fn) of one detector on one signal list."""

    def __init__(self, scorer: Scorer, units: list[Unit], signals: list[str]) -> None:
        self.scorer, self.units, self.signals = scorer, units, signals
        self.grid = settings()
        self.counts = np.zeros((len(self.grid), len(units), 4), dtype=np.int64)
        self._scores: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        pot: dict[int, float] = {}
        for j, unit in enumerate(units):
            for s, setting in enumerate(self.grid):
                pred = self.predict(j, setting, pot)
                t = unit.truth
                self.counts[s, j] = (
                    (pred & t).sum(),
                    (pred & ~t).sum(),
                    (~pred & ~t).sum(),
                    (~pred & t).sum(),
                )

    def scores(self, j: int, span: int) -> tuple[np.ndarray, np.ndarray]:
        if (j, span) not in self._scores:
            smoothed = self.units[j].frame[self.signals].ewm(span=span).mean().to_numpy()
            self._scores[j, span] = self.scorer(smoothed[:TRAIN_ROWS], smoothed[TRAIN_ROWS:])
        return self._scores[j, span]

    def predict(self, j: int, setting: Setting, pot: dict[int, float] | None = None) -> np.ndarray:
        span, rule, value, persist = setting
        train_scores, test_scores = self.scores(j, span)
        flags = test_scores > cutoff(train_scores, rule, value, {} if pot is None else pot)
        return k_of_n(flags, *persist)


def rates(c: np.ndarray) -> tuple[float, float, float]:
    """F1, FAR %, MAR % of summed (tp, fp, tn, fn) counts; works on stacked rows too."""
    tp, fp, tn, fn = (c[..., i].astype(float) for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(tp > 0, tp / (tp + (fn + fp) / 2), 0.0)
        far = np.where(fp + tn > 0, 100 * fp / (fp + tn), 0.0)
        mar = np.where(fn + tp > 0, 100 * fn / (fn + tp), 0.0)
    return f1, far, mar


def choose(tables: dict[str, Table], train: list[int], far_limit: float) -> tuple[str, Setting, dict[str, float]]:
    """The rule: most pooled F1 over the training units with pooled FAR <= far_limit (ties: lower FAR,
    then the earlier option and grid entry); if nothing keeps to the limit, the lowest FAR."""
    best: tuple[tuple[float, float], str, int] | None = None
    for option, table in tables.items():
        f1, far, _ = rates(table.counts[:, train].sum(axis=1))
        ok = far <= far_limit
        keys = np.where(ok, f1, -1.0 - far / 100)  # anything within the limit beats anything outside
        s = int(np.lexsort((far, -keys))[0])
        key = (float(keys[s]), -float(far[s]))
        if best is None or key > best[0]:
            best = (key, option, s)
    assert best is not None
    _, option, s = best
    f1, far, mar = rates(tables[option].counts[s, train].sum(axis=0))
    summary = {"f1": round(float(f1), 3), "far": round(float(far), 2), "mar": round(float(mar), 2)}
    return option, tables[option].grid[s], summary


def describe(option: str, setting: Setting, signals: list[str]) -> str:
    span, rule, value, (k, n) = setting
    dropped = [s for s in ALL_SIGNALS if s not in signals]
    thr = {
        "margin": f"median + {value:g} x (max - median) of train",
        "level": f"score > {value:g}",
        "pot": f"{value:g} x POT(risk {POT_RISK:g}) of train",
    }[rule]
    return f"{option} (drop {', '.join(dropped) or 'none'}); span {span}; {thr}; {k} of {n}"


def changepoints(parts: list[tuple[np.ndarray, pd.DataFrame]]) -> dict[str, object]:
    cp: dict[str, object] = {}
    counts = []
    for profile_name, profile in SKAB_PROFILES.items():
        counts = [
            skab_changepoint_file(df["datetime"].to_numpy(), p.astype(int), df["changepoint"].to_numpy(), profile)
            for p, df in parts
        ]
        cp[profile_name] = skab_changepoint_score(counts, profile)
    cp["missed"] = sum(f.missed for f in counts)
    cp["fps"] = sum(f.false_positives for f in counts)
    return cp


def signal_options(units: list[Unit]) -> dict[str, list[str]]:
    slow = slow_signals(units)
    return {
        "all": ALL_SIGNALS,
        "no Temperature": SIGNALS,
        "no slow signals": [s for s in ALL_SIGNALS if s not in slow],
    }


def cross_validate(scorers: dict[str, Scorer]) -> dict[str, object]:
    """Leave one labelled file out; each fold chooses signals, span, threshold and persistence on the others."""
    started = time.perf_counter()
    labelled, chunks = load_units()
    units = labelled + chunks
    n = len(labelled)
    tables: dict[tuple[str, tuple[str, ...]], Table] = {}

    def table(detector: str, signals: list[str]) -> Table:
        key = (detector, tuple(signals))
        if key not in tables:
            tables[key] = Table(scorers[detector], units, signals)
        return tables[key]

    variants = {
        "headline": (FAR_LIMIT, False),
        "far_limit_15": (15.0, False),
        "with_anomaly_free": (FAR_LIMIT, True),
    }
    out: dict[str, object] = {}
    for detector in [*scorers, "any pitstop detector"]:
        names = list(scorers) if detector == "any pitstop detector" else [detector]
        result: dict[str, object] = {}
        for variant, (far_limit, with_free) in variants.items():
            parts: list[tuple[np.ndarray, pd.DataFrame]] = []
            per_file = []
            in_fold = []
            for i in range(n):
                train = [j for j in range(n) if j != i] + (list(range(n, len(units))) if with_free else [])
                options = signal_options([units[j] for j in train])
                fold_tables = {
                    f"{name}: {opt}" if len(names) > 1 else opt: table(name, sigs)
                    for name in names
                    for opt, sigs in options.items()
                }
                option, setting, train_rates = choose(fold_tables, train, far_limit)
                chosen = fold_tables[option]
                pred = chosen.predict(i, setting)
                c = chosen.counts[chosen.grid.index(setting), i]
                in_fold.append(train_rates)
                parts.append((pred, labelled[i].frame.iloc[TRAIN_ROWS:]))
                per_file.append(
                    {
                        "file": labelled[i].name,
                        "false_rows": int(c[1]),
                        "normal_rows": int(c[1] + c[2]),
                        "missed_rows": int(c[3]),
                        "anomalous_rows": int(c[0] + c[3]),
                        "chosen": describe(option.split(": ")[-1], setting, chosen.signals),
                        **({"detector": option.split(": ")[0]} if len(names) > 1 else {}),
                        "training_files": train_rates,
                    }
                )
            summary: dict[str, object] = {}
            for subset, idx in (("all", range(n)), ("valve1", range(16)), ("valve2", range(16, n))):
                sub = [parts[i] for i in idx]
                conf = skab_outlier_metrics([(p, df["anomaly"].to_numpy()) for p, df in sub])
                summary[subset] = {**conf.summary(), "changepoint": changepoints(sub)}
            summary["training_files_mean"] = {
                k: round(float(np.mean([r[k] for r in in_fold])), 3 if k == "f1" else 2) for k in ("f1", "far", "mar")
            }
            summary["files_with_far_over_30"] = sum(f["false_rows"] > 0.3 * f["normal_rows"] for f in per_file)
            if with_free:
                # Each anomaly-free piece held out in turn, its neighbours too (they are one run):
                # the false-alarm rate on normal running that this variant's choices have not seen.
                held = []
                for k in range(n, len(units)):
                    train = [j for j in range(len(units)) if j < n or abs(j - k) > 1]
                    options = signal_options([units[j] for j in train])
                    fold_tables = {
                        f"{name}: {opt}" if len(names) > 1 else opt: table(name, sigs)
                        for name in names
                        for opt, sigs in options.items()
                    }
                    option, setting, _ = choose(fold_tables, train, far_limit)
                    chosen = fold_tables[option]
                    held.append(chosen.counts[chosen.grid.index(setting), k])
                summary["anomaly_free_held_out_far"] = round(float(rates(np.sum(held, axis=0))[1]), 2)
                summary["anomaly_free_held_out_false_rows"] = [int(c[1]) for c in held]
            summary["per_file"] = per_file
            result[variant] = summary
        # The settings the bench ships: the same rule on all labelled files; then the anomaly-free
        # pieces, which no choice has seen, show the false-alarm rate on normal running.
        options = signal_options(labelled)
        final_tables = {
            f"{name}: {opt}" if len(names) > 1 else opt: table(name, sigs)
            for name in names
            for opt, sigs in options.items()
        }
        option, setting, train_rates = choose(final_tables, list(range(n)), FAR_LIMIT)
        chosen = final_tables[option]
        free = chosen.counts[chosen.grid.index(setting), n:]
        result["final"] = {
            "chosen": describe(option.split(": ")[-1], setting, chosen.signals),
            **({"detector": option.split(": ")[0]} if len(names) > 1 else {}),
            "all_labelled_files_in_sample": train_rates,
            "anomaly_free_far": round(float(rates(free.sum(axis=0))[1]), 2),
            "anomaly_free_false_rows": [int(f[1]) for f in free],
        }
        out[detector] = result
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def fixed_on_anomaly_free(scorer: Scorer) -> dict[str, object]:
    """The fixed settings (module constants) on the anomaly-free pieces."""
    _, chunks = load_units()
    false_rows, normal = [], 0
    for unit in chunks:
        smoothed = unit.frame[SIGNALS].ewm(span=SPAN).mean().to_numpy()
        train_scores, test_scores = scorer(smoothed[:TRAIN_ROWS], smoothed[TRAIN_ROWS:])
        middle = np.median(train_scores)
        flags = k_of_n(test_scores > middle + MARGIN * (train_scores.max() - middle), *PERSIST)
        false_rows.append(int(flags.sum()))
        normal += len(flags)
    return {"far": round(100 * sum(false_rows) / normal, 2), "false_rows": false_rows}


def main() -> None:
    files = load()
    scorers: dict[str, Scorer | None] = {
        "pitstop.pca_t2": pitstop_scorer(lambda: PcaDetector(statistic="t2", variance=1.0)),
        "pitstop.pca_t2q": pitstop_scorer(lambda: PcaDetector(statistic="combined", variance=0.9)),
        "pitstop.mad": pitstop_scorer(lambda: RobustZScoreDetector(aggregate="rms")),
        "pitstop.reconstruction": pitstop_scorer(ReconstructionDetector),
        "pitstop.iforest": pitstop_scorer(lambda: IsolationForestDetector(random_state=0)),
        "pyod.PCA": pyod_scorer("PCA"),
        "pyod.ECOD": pyod_scorer("ECOD"),
        "pyod.HBOS": pyod_scorer("HBOS"),
        "pyod.IForest": pyod_scorer("IForest"),
        "river.HalfSpaceTrees": river_scorer(),
    }
    cv_scorers = {name: s for name, s in scorers.items() if name in CV_DETECTORS and s is not None}
    cv = cross_validate(cv_scorers)
    results = {
        name: evaluate(s, files) if s else "not installed (pip install -e .[bench])" for name, s in scorers.items()
    }
    previous = pitstop_scorer(lambda: PcaDetector(statistic="t2", variance=1.0))
    results["pitstop.pca_t2 previous pipeline"] = evaluate(previous, files, ALL_SIGNALS, 30, 1.5)
    head = cv[HEADLINE]["headline"]  # type: ignore[index]
    fixed = results[HEADLINE]
    emit(
        {
            "benchmark": "skab",
            "headline": {
                "detector": HEADLINE,
                "protocol": "leave-one-file-out over the 20 labelled files (valve1 + valve2)",
                "cross_validated": {k: head[k] for k in ("all", "valve1", "valve2")},
                "fixed_settings_same_run": {k: fixed[k] for k in ("all", "valve1", "valve2")},  # type: ignore[index]
                "fixed_settings_anomaly_free": fixed_on_anomaly_free(cv_scorers[HEADLINE]),
            },
            "target": {"f1": ">= 0.75", "far": "<= 15", "cross_validated": True},
            "cross_validation": {
                "split": f"per file, first {TRAIN_ROWS} rows fit the detector; the rest is scored",
                "rule": f"most pooled F1 on the other 19 files with pooled FAR <= {FAR_LIMIT:g} %",
                "grid": {
                    "signals": list(SIGNAL_SETS),
                    "slow_autocorr": SLOW_AUTOCORR,
                    "span": list(CV_SPANS),
                    "threshold": [f"{r} {v:g}" for r, v in CV_RULES],
                    "persistence": [f"{k} of {n}" for k, n in CV_PERSIST],
                },
                "variants": {
                    "headline": "as above; the anomaly-free run is not used for any choice",
                    "far_limit_15": "the same with FAR <= 15 % (reported for sensitivity, not chosen after)",
                    "with_anomaly_free": "training FAR also counts 8 pieces of the anomaly-free run",
                },
                "results": cv,
            },
            "fixed_settings": {
                "split": f"first {TRAIN_ROWS} rows of each file train; test parts scored",
                "pipeline": (
                    f"{len(SIGNALS)} signals (no Temperature); EWM mean span {SPAN}; anomaly when score > "
                    f"median + {MARGIN} x (max - median) of train; then {PERSIST[0]} of {PERSIST[1]} rows"
                ),
                "chosen_on": "valve1 only, by hand (valve1 in-sample, valve2 hold-out)",
                "previous_pipeline": "all 8 signals; EWM mean span 30; margin 1.5",
                "results": results,
            },
        }
    )


if __name__ == "__main__":
    main()
