"""The network a run trains: one of S6's, by its config's name, or one of your own, built and checked for what S6
can train, and the name its run's config gives it."""

import copy
import inspect
import numbers

import torch
from torch import nn

from s6.config import TrainConfig, UserError
from s6_model import MODELS, count_parameters, failure, keeps_state, layers_called


def check_arguments(config, budget=None):
    """A UserError where `config` is not a TrainConfig or `budget` not a positive number of parameters."""
    if not isinstance(config, TrainConfig):
        raise UserError(f"a run takes a TrainConfig, not {type(config).__name__}: recipe(...) or TrainConfig(...)")
    if budget is not None and not (isinstance(budget, numbers.Real) and not isinstance(budget, bool) and budget > 0):
        raise UserError(f"budget={budget!r} is not a number of parameters")


def build_model(config, device, model=None):
    """The network to train, on `device`: config.model's class from s6_model.MODELS, or `model`, a network of your
    own that maps (N, 1, 28, 28) images to (N, 10) logits: an nn.Module class (or any function returning a
    module), built here with dropout=config.dropout where it takes a `dropout` argument, or an nn.Module, of
    which a copy is trained (its weights are where training starts). Raises UserError for a config.model that S6
    does not have, when no network is given."""
    if model is None:
        if config.model not in MODELS:
            raise UserError(f"TrainConfig.model={config.model!r} is not one of S6's networks ({', '.join(MODELS)}): "
                            f"give the network to train, fit(config, model=...)")
        model = MODELS[config.model]
    if isinstance(model, nn.Module):
        return copy.deepcopy(model).to(device)
    if not callable(model):
        raise UserError(f"model={model!r} is not a network: give an nn.Module, or its class (for one of S6's own, "
                        f"TrainConfig.model)")
    name = getattr(model, "__name__", type(model).__name__)
    try:
        takes_dropout = "dropout" in inspect.signature(model).parameters
    except (TypeError, ValueError):  # a callable whose signature Python cannot read
        takes_dropout = False
    try:
        network = model(dropout=config.dropout) if takes_dropout else model()
    except Exception as error:  # the user's code: said in one line, with where it failed
        raise UserError(f"{name}() could not build a network ({failure(error)}): give fit one built, "
                        f"model={name}(...)") from None
    if not isinstance(network, nn.Module):
        raise UserError(f"{name}() returned {type(network).__name__}, not a network (an nn.Module)")
    return network.to(device)


def network_name(network):
    """What a run's config names `network`: the `key` its own class sets (S6's networks and the lab's), else its
    class name; a subclass of Net of one's own is named for itself, not for Net."""
    key = vars(type(network)).get("key")
    return key if isinstance(key, str) else type(network).__name__


@torch.no_grad()
def check_network(model, device):
    """A UserError, naming what is wrong, where `model` is not a network S6 can train: it has no parameters, it uses
    layers that are not its submodules (kept in a plain list: torch neither trains nor saves them), or it does not
    map (N, 1, 28, 28) images to (N, 10) logits (it returns another shape, or probabilities)."""
    name = type(model).__name__
    images = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)
    try:  # before the parameters are counted: the forward gives lazy layers (nn.LazyConv2d) their weights
        strays = [type(layer).__name__ for layer_name, layer, _, _ in layers_called(model, images)
                  if layer_name is None and (keeps_state(layer) or isinstance(layer, nn.modules.dropout._DropoutNd))]
        output = model.eval()(images)
    except Exception as error:  # any layer's complaint about the input is the same mistake
        raise UserError(f"{name} cannot read (N, 1, 28, 28) images: {failure(error)}") from None
    finally:
        model.train()
    if count_parameters(model) == 0:
        raise UserError(f"{name} has no parameters to train")
    if strays:
        raise UserError(f"{name} runs layers that are not its submodules ({', '.join(dict.fromkeys(strays))}): "
                        f"held in a plain Python list or dict, or made in its forward, they are neither trained nor "
                        f"saved, nor switched to evaluation; hold them in nn.ModuleList, nn.ModuleDict or "
                        f"nn.Sequential")
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, 10):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise UserError(f"{name} returns {shape} for 2 images of (1, 28, 28): S6 trains networks that return "
                        f"(N, 10) logits")
    output = output.float().cpu()
    if output.min() >= 0 and torch.allclose(output.sum(1), torch.ones(2), atol=1e-4):
        raise UserError(f"{name} returns probabilities (each row sums to 1, as after a softmax): S6's loss, "
                        f"cross-entropy, takes the scores before it (logits); leave the softmax out")
