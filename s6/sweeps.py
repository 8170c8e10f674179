"""A sweep: one config trained once per seed, each seed in a folder of its own, and the statistics over the seeds.

`train_seeds(config, [1, 2, 3], "results/net")` trains into results/net-seed1/, -seed2/, -seed3/ and writes
results/net/seeds.json. Run again, it reuses a seed whose finished run is of the same config and network, resumes
one that stopped, and refuses (unless `overwrite`) to replace a run of anything else.
"""

from dataclasses import replace
from pathlib import Path

from s6.config import PLACEMENT, SAME_RESULT, UserError, described, differences
from s6.files import save_json
from s6.networks import build_model, network_name
from s6.results import seed_statistics
from s6.runs import check_fresh, describe_run, read_metrics, run_lock, saved_run
from s6.training import fit
from s6_model import count_parameters


def seed_folders(out, seeds):
    """{seed: folder} of a sweep into `out`: results/net -> results/net-seed1, ..."""
    out = Path(out)
    return {seed: out.parent / f"{out.name}-seed{seed}" for seed in dict.fromkeys(seeds)}


def seed_plan(config, folder, overwrite, model=None):
    """What to do for one seed's folder: 'reuse' its finished run, 'resume' its stopped one, or 'train'.

    A run there of another config, of another network class, or of a network whose parameter count has changed
    since, is replaced only with `overwrite`. A finished run that differs only in where or how fast it ran
    (TrainConfig's SAME_RESULT) is the same run; a stopped one is resumed only where it differs in no more than where
    its data is and the device's name (PLACEMENT), as a resume continues exactly the run saved.
    """
    run = None if overwrite else saved_run(folder)
    if run is None:
        check_fresh(folder, overwrite)  # nor exports of other weights, unless told to replace them
        return "train"
    network = build_model(config, "cpu", model)
    config = replace(config, model=network_name(network)) if model is not None else config
    parameters = count_parameters(network)
    changed = differences(run.config, config, ignore=SAME_RESULT if run.finished else PLACEMENT)
    same_class = run.model_class in (None, type(network).__name__)
    same_network = same_class and (run.record is None or run.record.get("parameters") == parameters)
    if not changed and same_network:
        return "reuse" if run.finished else "resume"
    what = (f"another config ({described(changed)})" if changed else
            f"another network ({run.model_class}, not {type(network).__name__})" if not same_class else
            f"a network of {run.record.get('parameters'):,} parameters ({parameters:,} now)")
    raise UserError(f"{folder} holds {describe_run(run)} of {what}: replace it with --overwrite, or choose another "
                    f"--out")


def train_seeds(config, seeds, out, overwrite=False, progress=True, log=print, model=None):
    """Train `config` once per seed into OUT-seed<N>/, reusing or resuming what is there (`seed_plan`), and write
    OUT/seeds.json: the config, the statistics over the seeds (s6.results.seed_statistics) and each seed's
    history. Returns (statistics, {seed: metrics.json record}). `model`: a network of one's own, as for `fit`.

    Every seed folder is checked before any is trained, and all are locked while the sweep runs.
    """
    folders = seed_folders(out, seeds)
    configs = {seed: replace(config, seed=seed) for seed in folders}
    for seed, folder in folders.items():  # a seed folder that cannot be used is named before any training
        seed_plan(configs[seed], folder, overwrite, model)
    with run_lock(out, *folders.values()):
        plans = {seed: seed_plan(configs[seed], folders[seed], overwrite, model) for seed in folders}  # now final
        for seed, plan in plans.items():
            if plan == "reuse":
                log(f"seed {seed}: reusing the finished run in {folders[seed]}")
            else:
                fit(configs[seed], out_dir=folders[seed], resume=plan == "resume", overwrite=overwrite,
                    progress=progress, log=log, model=model)
        runs = {seed: read_metrics(folder / "metrics.json") for seed, folder in folders.items()}
        stats = seed_statistics(runs)
        named = runs[next(iter(runs))]["config"]["model"]
        save_json(Path(out) / "seeds.json", {"config": replace(config, model=named).to_dict(), "summary": stats,
                                             "runs": {seed: run["history"] for seed, run in runs.items()}})
    return stats, runs
