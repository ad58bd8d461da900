"""Networks whose training has phases: the hook through which they hear of each epoch's end.

A comparator whose training changes course midway (MDEQ's unrolled pre-training gives way
to the solver; LegoNet freezes its lego selection after a warm-up) derives its module from
``Phased``. The trainer (suite.training.train.fit) calls ``on_epoch_end`` on every such
module of the network after every epoch, before validation; data-parallel training lets a
phased network's parameters go without gradients (a frozen selection stops training).
"""

from __future__ import annotations

import abc


class Phased(abc.ABC):
    """A module (mixed into an ``nn.Module``) whose training has phases."""

    @abc.abstractmethod
    def on_epoch_end(self, epoch: int, epochs: int) -> None:
        """``epoch`` of ``epochs`` has ended (counted from 1); switch phase if it is time."""
