"""How the audit's detector fit holds up on what it was not fitted on: the product's fit against others.

Usage: python Testing/benchmarks/detector_fits.py AUDIT/structures.csv

Reads the ``structures.csv`` of ``auv audit --fit`` and prints, for each fit,
the leave-one-kind-out AUROC per kind and its mean, and the leave-one-case-out
AUROC (:func:`auvcore.audit.detector.held_out_figures`), then the unfitted
``label_check`` on the same structures. The fits: the product's (every z's
weight >= 0, C = 0.05, drawn towards ``label_check``), the same drawn towards
0 (the product's until the modality change), that without the constraint, and
the first detector's (unconstrained, C = 0.5); each with every scorer, and
without the two boundary scorers.
"""

from __future__ import annotations

import argparse

import pandas as pd

from auvcore.audit.detector import REGULARISATION_C, held_out_figures

FITS = {"constrained, C 0.05, towards label_check (product)": {"c": REGULARISATION_C, "constrained": True},
        "constrained, C 0.05, towards 0": {"c": REGULARISATION_C, "constrained": True, "prior": None},
        "unconstrained, C 0.05, towards 0": {"c": REGULARISATION_C, "constrained": False, "prior": None},
        "unconstrained, C 0.5, towards 0 (first detector)": {"c": 0.5, "constrained": False, "prior": None}}
BOUNDARY_SCORERS = ("boundary_logits", "boundary_distance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("structures", help="an audit's structures.csv (auv audit --fit)")
    table = pd.read_csv(parser.parse_args().structures)
    scorers = [c[: -len("_z")] for c in table.columns if c.endswith("_z")]
    kinds = table["kind"].fillna("clean").astype(str).tolist()
    groups = table["source"].astype(str).tolist()
    for label, names in (("every scorer", scorers), ("without the boundary scorers", [s for s in scorers if s not in BOUNDARY_SCORERS])):
        for fit_name, fit in FITS.items():
            figures = held_out_figures(table, kinds, groups, names, **fit)
            per_kind = " ".join(f"{k[len('leave_out_'):]} {v:.2f}" for k, v in figures.items() if k.startswith("leave_out_"))
            print(f"{label:28s} {fit_name:50s} leave-one-kind-out {figures['leave_one_kind_out_mean']:.3f} "
                  f"({per_kind}); leave-one-case-out {figures['leave_one_case_out']:.3f}")
    if "unfitted_label_check" in figures:
        print(f"{'unfitted label_check':79s} kinds' mean {figures['unfitted_label_check_kind_mean']:.3f}; "
              f"every structure {figures['unfitted_label_check']:.3f}")


if __name__ == "__main__":
    main()
