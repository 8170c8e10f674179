"""S6's code, one concern per module; `s6_utils` is the surface the notebook and the scripts import.

config       TrainConfig, device, seeds
data         MNIST files, the fast and torchvision loaders, batch augmentation
training     set-up, train_one_epoch, evaluate, the weight average, fit
speed        bf16, channels-last pooling, CUDA graphs: switched on by speed_up()
distillation a trained teacher's softened probabilities, and the loss that mixes them with the labels
checkpoints  checkpoint.pt, metrics.json, model.pt
plots        figures and tables of a model and a run
predictor    a user's picture of a digit made MNIST-like
reading      the network's reading of it: a digit, unsure, or not a digit
cli          the flags and error handling the scripts share
"""
