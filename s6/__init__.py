"""S6's code, one concern per module; `s6_utils` is the surface the notebook and the scripts import.

config       TrainConfig, device, seeds
data         MNIST files, the fast and torchvision loaders, batch augmentation
training     set-up, the training step and its epoch, evaluate and predict, the weight average, fit
speed        bf16, channels-last pooling, CUDA graphs: switched on by speed_up()
checkpoints  checkpoint.pt, metrics.json, model.pt
plots        figures of a model and a run
preparing    a user's picture of a digit made MNIST-like
reading      the network's reading of it: a digit, unsure, or not a digit
app          the drawing demo's page (Gradio)
cli          what the scripts share: flags, markdown tables, one-line errors
"""
