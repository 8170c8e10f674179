"""What a run's history says: its accuracies, their summary, a sweep's statistics over seeds, and markdown tables.

A history is a list of epoch records: epoch, train_loss, train_acc, lr, seconds, and the evaluation's loss and
accuracy under keys named for the images evaluated: test_loss and test_acc, or val_loss and val_acc for a run on
the validation split. An epoch that was not evaluated has None there.
"""

import numbers
import statistics

from s6.config import TARGET_ACC
from s6_model import Net, ingredients

PREFIXES = {"test": "test", "validation": "val"}


def is_epoch_record(epoch):
    """Whether `epoch` is a history entry as S6 writes it: its number, the training loss, accuracy and rate, the
    seconds, and the evaluation's loss and accuracy under one prefix (None for an epoch not evaluated)."""
    if not isinstance(epoch, dict) or not isinstance(epoch.get("epoch"), int):
        return False
    trained = all(isinstance(epoch.get(key), numbers.Real) for key in ("train_loss", "train_acc", "lr", "seconds"))
    evaluated = [p for p in PREFIXES.values() if f"{p}_acc" in epoch and f"{p}_loss" in epoch]
    return trained and len(evaluated) == 1 and all(
        epoch[f"{evaluated[0]}_{key}"] is None or isinstance(epoch[f"{evaluated[0]}_{key}"], numbers.Real)
        for key in ("loss", "acc"))


def prefix(eval_set):
    """The keys' prefix for what was evaluated: 'test' for the test set, 'val' for the validation split."""
    return PREFIXES[eval_set]


def prefix_of(record):
    """The prefix of an epoch record's or a summary's evaluation keys: 'val' where it has them, else 'test'
    (the validation runs of earlier versions of S6 were recorded under 'test' keys too)."""
    return "val" if any(key.startswith(("val_", "final_val", "best_val")) for key in record) else "test"


def accuracy(record):
    """An epoch record's evaluated accuracy (percent), or None where the epoch was not evaluated."""
    return record[f"{prefix_of(record)}_acc"]


def evaluated_epochs(history):
    """The records of the epochs that were evaluated: a run may skip the ones that cannot matter."""
    return [record for record in history if accuracy(record) is not None]


def summarize(history, target=TARGET_ACC):
    """The last and best evaluated accuracy, the best epoch, and the first epoch at or above the target, of the
    epochs evaluated (a run without eval_each_epoch evaluates its last only, so its first epoch at the target is
    the first evaluated one); None before any was. Keys: final_test_acc, or final_val_acc for the validation
    split, and so on."""
    evaluated = evaluated_epochs(history)
    if not evaluated:
        return None
    p = prefix_of(evaluated[0])
    best = max(evaluated, key=accuracy)
    first = next((record["epoch"] for record in evaluated if accuracy(record) >= target), None)
    return {f"final_{p}_acc": accuracy(evaluated[-1]), f"best_{p}_acc": accuracy(best), "best_epoch": best["epoch"],
            "first_epoch_at_target": first, "target": target}


def final_accuracy(summary):
    """A summary's last evaluated accuracy (percent)."""
    return summary[f"final_{prefix_of(summary)}_acc"]


def seed_statistics(runs):
    """What seeds.json sums up of a sweep's runs ({seed: metrics.json record}): the mean, spread and range of
    the last epoch's accuracy, and the median first evaluated epoch at or above the target."""
    finals = [final_accuracy(run["summary"]) for run in runs.values()]
    firsts = [run["summary"]["first_epoch_at_target"] for run in runs.values()]
    reached = [epoch for epoch in firsts if epoch is not None]
    first = next(iter(runs.values()))
    p = prefix_of(first["summary"])
    return {
        "seeds": list(runs), "epochs": len(first["history"]), "parameters": first["parameters"],
        "eval_set": first.get("eval_set", "test"),
        "evaluated_every_epoch": all(accuracy(r) is not None for run in runs.values() for r in run["history"]),
        f"final_{p}_acc_mean": statistics.mean(finals),
        f"final_{p}_acc_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
        f"final_{p}_acc_min": min(finals), f"final_{p}_acc_max": max(finals),
        "median_first_epoch_at_target": statistics.median(reached) if len(reached) == len(firsts) else None,
        "seeds_at_target": len(reached), "target": TARGET_ACC,
    }


def seed_figures(stats):
    """(mean, std, min, max) of a sweep's last-epoch accuracy, from `seed_statistics`."""
    p = prefix_of(stats)
    return tuple(stats[f"final_{p}_acc_{name}"] for name in ("mean", "std", "min", "max"))


def seeds_table_row(model, stats):
    """One row of the README's results table, from `seed_statistics`; the headings name what was evaluated
    (test or validation images), and a sweep evaluated at its last epoch only counts evaluated epochs."""
    median, seeds = stats["median_first_epoch_at_target"], len(stats["seeds"])
    mean, std, low, high = seed_figures(stats)
    acc = f"last-epoch {stats.get('eval_set', 'test')} acc"
    first = "first epoch" if stats.get("evaluated_every_epoch", True) else "first evaluated epoch"
    return {
        "model": model, "parameters": f"{stats['parameters']:,}", "epochs": stats["epochs"], "seeds": seeds,
        f"{acc}, mean ± std": f"{mean:.2f}% ± {std:.2f}",
        "min / max": f"{low:.2f}% / {high:.2f}%",
        f"median {first} ≥ {TARGET_ACC}%": (f"{median:g}" if median is not None
                                            else f"— ({stats['seeds_at_target']} of {seeds} seeds reach it)"),
    }


def markdown_table(rows, columns=None):
    """A GitHub markdown table from a list of dicts; columns default to the first row's keys."""
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def assignment_row(name, model, history=None, budget=Net.budget, epochs=20, target=TARGET_ACC):
    """One row of the table "does this network meet the assignment?" for `model`, named `name`: fewer parameters
    than `budget`, BatchNorm, Dropout and global average pooling in its forward (s6_model.ingredients), and, with
    `history`, a run of at most `epochs` epochs whose last epoch reached `target`. Each cell "yes" or "no", with what
    was found."""
    found = ingredients(model)

    def said(met, what=""):
        return ("yes" if met else "no") + (f" ({what})" if what else "")

    row = {"network": name, f"under {budget:,} parameters": said(found["parameters"] < budget,
                                                                 f"{found['parameters']:,}"),
           **{part: said(found[part]) for part in ("BatchNorm", "Dropout", "global average pooling")}}
    if history is not None:
        final = final_accuracy(summarize(history, target))
        row[f"≥ {target}% within {epochs} epochs"] = said(len(history) <= epochs and final >= target,
                                                          f"{final:.2f}% after {len(history)}")
    return row
