"""What the notebook imports: device, config, data, the training loop, results, plots.

A thin surface over the `s6` package, where the code lives, one concern per module (see s6/__init__.py).
The speed tricks (bf16, channels-last pooling, CUDA graphs) are switched on by one call, `speed_up`, which
`set_up` makes.
"""

from s6.checkpoints import CheckpointError, load_config, load_weights
from s6.config import (
    TARGET_ACC,
    TrainConfig,
    UserError,
    eval_set,
    get_device,
    machine_name,
    recipe,
    recipe_of,
    seed_everything,
)
from s6.data import MNIST_FILES, MnistDataError, make_loaders, mnist_dataset
from s6.files import save_json
from s6.networks import build_model
from s6.plots import (
    model_summary,
    plot_ablation,
    plot_confusion_matrix,
    plot_feature_maps,
    plot_history,
    plot_ladder,
    plot_misclassified,
    plot_receptive_fields,
    plot_samples,
    plot_test_accuracy,
)
from s6.results import assignment_row, markdown_table, summarize
from s6.runs import run_record
from s6.speed import speed_up
from s6.training import (
    TrainingDiverged,
    build_ema,
    build_optimizer,
    confusion_matrix,
    epoch_header,
    evaluate,
    evaluated,
    fit,
    format_epoch,
    not_evaluated,
    predict,
    set_up,
    train_one_epoch,
    training_step,
)

__all__ = [
    # config and device
    "TARGET_ACC", "TrainConfig", "UserError", "eval_set", "get_device", "machine_name", "recipe", "recipe_of",
    "seed_everything",
    # data
    "MNIST_FILES", "MnistDataError", "make_loaders", "mnist_dataset",
    # training
    "TrainingDiverged", "build_ema", "build_model", "build_optimizer", "epoch_header", "evaluate", "evaluated",
    "fit", "format_epoch", "not_evaluated", "set_up", "speed_up", "train_one_epoch", "training_step",
    # evaluation
    "confusion_matrix", "predict",
    # results files
    "CheckpointError", "assignment_row", "load_config", "load_weights", "markdown_table", "run_record", "save_json",
    "summarize",
    # inspection and plots
    "model_summary", "plot_ablation", "plot_confusion_matrix", "plot_feature_maps", "plot_history", "plot_ladder",
    "plot_misclassified", "plot_receptive_fields", "plot_samples", "plot_test_accuracy",
]
