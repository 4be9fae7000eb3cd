"""galib: learning group actions in disentangled latent image representations.

Data flows one way: ``data`` → ``groups`` (pairing) → ``models`` → ``losses`` → ``train`` →
``metrics`` / ``probe`` → ``viz``.
"""
from .data import DataSplits, ImageSet, iterate_pairs, load_dataset, make_pairs, to_float
from .groups import FiniteGroup, Group, available_groups, check_group_action, get_group
from .losses import ald_losses
from .models import ALDMask, GroupLatentAutoencoder, build_model, paper_decoder, paper_encoder
from .train import TrainConfig, load_checkpoint, train

__version__ = "0.1.0"
