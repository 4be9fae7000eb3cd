"""galib: learning group actions in disentangled latent image representations.

The map, bottom up (imports run one way, down this list):

* ``paths``, ``io``, ``devices`` — where things are and what a written file records; files; devices
* ``groups``, ``datasets`` — what acts (one file per group) and what is acted on (one per source)
* ``pairs`` — where they meet: ``(x, T_g x, g)`` per batch
* ``models``, ``losses``, ``train`` (``distributed``) — the ALD autoencoder and how it learns
* ``evaluation`` — scores a given model: metrics, probes, scores, tables
* ``experiments`` — what every study stands on: trainings and scorings, train-or-load, cached scores
* ``studies`` — one module per notebook (plan, rows, figures, findings) and the registry of them
* ``notebook``, ``tools`` — the kernel side of a notebook; every command line (pipeline, sweep, …)
"""
from .datasets import DataSplits, ImageSet, load_dataset, register_dataset, to_float
from .groups import FiniteGroup, Group, available_groups, check_group_action, get_group, register_group
from .losses import ald_losses
from .models import ALDMask, GroupLatentAutoencoder, build_model, paper_decoder, paper_encoder
from .pairs import iterate_pairs, make_pairs
from .train import TrainConfig, load_checkpoint   # train(): galib.train.train (galib.train stays the package)

__version__ = "0.1.0"
