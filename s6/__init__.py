"""S6's code, one concern per module; `s6_utils` is the surface the notebook imports.

config           TrainConfig, the recipes (functions returning a complete TrainConfig), device, seeds
data             MNIST files, the fast and torchvision loaders, batch augmentation
networks         the network a run trains: S6's by name, or one of your own, built and checked
training         set-up, the training step and its epoch, evaluate and predict, the weight average, fit
speed            bf16, channels-last pooling, CUDA graphs: switched on by speed_up()
results          a history's accuracies, summary and seed statistics; markdown tables
files            atomic writes, and one-line errors where a file or folder cannot be written
checkpoints      checkpoint.pt and model.pt
runs             a run's folder: metrics.json, finished or stopped, starting afresh or resuming, the lock
sweeps           one config trained once per seed, and the statistics over the seeds
plots            figures of a model and a run
preparing        a user's picture of a digit made MNIST-like
reading          the network's reading of it: a digit, unsure, or not a digit
app              the drawing demo's page (Gradio)
export           ONNX and int8 files, checked in ONNX Runtime
inference_speed  how fast each way reads digits on a CPU: PyTorch's, and ONNX Runtime's
cli              what the scripts share: flags, loading a model, one-line errors
"""
