"""The beta the exact objective sees, for every run of a DisTIB study (chapter 05):

    python tools/beta_scale.py data/results/study_beta_scale_styled_digits.json \
        --record data/results/beta_scale_styled_digits.json

Each finished run's model is loaded from its folder in the run store (never trained: a run that
is not current is refused), and s^2, the decoder's squared error per pixel on the first 1,000 test
images, is measured on sampled codes (as the loss sees them) and on the codes' means
(:func:`disentangle.supervised.residual_variance`); the record lists, per run, w, both s^2 and the
exact-scale beta, beta / (w s^2) (:func:`disentangle.supervised.exact_beta`), beside the run's
recorded metrics.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
from pathlib import Path

from disentangle import config, runs, studies, supervised

TEST_IMAGES = 1000


def measure(entry: dict, profile: str) -> dict:
    """s^2 and the exact-scale beta of one finished study run, loaded from its folder."""
    settings = dict(entry["settings"])
    model, data, seed = settings.pop("model"), settings.pop("data"), settings.pop("seed")
    found = supervised.load_or_train(model, data, profile=profile, seed=seed,
                                     out_dir=entry["run_dir"], progress=False,
                                     device="cpu", **settings)
    if found.trained:
        raise SystemExit(f"{entry['key']}: its folder {entry['run_dir']} held no current run, "
                         "and it was trained again; run the study first.")
    images = found.data.test_images(0, TEST_IMAGES)
    sampled = supervised.residual_variance(found.model, images, sampled=True)
    means = supervised.residual_variance(found.model, images, sampled=False)
    run = supervised.settings_for(model, data, profile=profile, seed=seed, **settings)
    return {"group": entry["group"], "seed": seed, "w": run.reconstruction_weight,
            "beta": run.beta, "s2_sampled": sampled, "s2_means": means,
            "exact_beta": supervised.exact_beta(run, sampled),
            "exact_beta_from_means": supervised.exact_beta(run, means),
            "metrics": entry["metrics"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a study's results file")
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args()
    record = studies.read_results(args.results)
    profile = record["study"]["profile"]
    measured = [measure(e, profile) for e in record["runs"] if e["status"] == "finished"]
    by_group: dict[str, list[dict]] = {}
    for row in measured:
        by_group.setdefault(row["group"], []).append(row)
    summary = {group: {key: statistics.mean(r[key] for r in rows)
                       for key in ("w", "s2_sampled", "s2_means", "exact_beta")}
               for group, rows in by_group.items()}
    runs.write_json(args.record, {
        "what": __doc__.split("\n\n")[0].strip(),
        "command": f"python tools/beta_scale.py {args.results} --record {args.record}",
        "study": str(args.results), "test_images": TEST_IMAGES,
        "environment": config.environment(),
        "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "runs": measured, "summary": summary,
    })
    for group, row in summary.items():
        print(f"{group}: w {row['w']:g}, s^2 {row['s2_sampled']:.4f} (means "
              f"{row['s2_means']:.4f}), exact beta {row['exact_beta']:.3f}")


if __name__ == "__main__":
    main()
