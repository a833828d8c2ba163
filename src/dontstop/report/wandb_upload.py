"""`dontstop aggregate --wandb`: every table of paper_tables/<suite>/ as a W&B Table (`tables/<name>`,
plus every run as `tables/runs`) and every plot as an image (`plots/<name>`), in one run:
job_type `aggregate`, group `aggregate`, name `aggregate-<suite>`.

The files in paper_tables/ are the result; this run is a view of them. A W&B failure is one
warning line (wandb_log), never a failed aggregate.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import wandb_log


def log_to_wandb(suite: str, tables: dict, plots: list[Path], runs: pd.DataFrame) -> None:
    """`tables`: name -> (title, tidy frame, grid), as report.write.build_tables returns them."""
    run = wandb_log.start_run(True, group="aggregate", job_type="aggregate", name=f"aggregate-{suite}",
                              config={"suite": suite, "runs": len(runs), "tables": sorted(tables)},
                              tags=[suite])
    if run is None:
        return

    def payload() -> dict:
        import wandb

        frames = {name: tidy for name, (_, tidy, _) in tables.items()}
        frames["runs"] = runs.drop(columns="pretraining", errors="ignore")
        data = {f"tables/{name}": wandb.Table(dataframe=_plain(frame)) for name, frame in frames.items()}
        data |= {f"plots/{path.stem}": wandb.Image(str(path)) for path in plots if path.suffix == ".png"}
        return data

    run.log(run.guard("tables", payload) or {})
    run.finish({"tables": len(tables), "plots": sum(p.suffix == ".png" for p in plots)})


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers stay numbers (sortable in W&B; a nullable Int64 column's <NA> becomes NaN, which
    wandb.Table accepts); anything else (text, dicts, lists, None) becomes text."""
    frame = frame.reset_index(drop=True).copy()
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
            continue
        if pd.api.types.is_numeric_dtype(values):
            frame[column] = values.to_numpy(dtype="float64", na_value=np.nan)
        else:
            frame[column] = values.astype(str)
    return frame
