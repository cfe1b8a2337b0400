"""Double-DQN update with masked targets, n-step returns and prioritized-replay weights.

One `DQNUpdate.update(batch)` call, CleanRL-style:

    next_action = argmax over valid cells of Q_online(next_obs)          (Double DQN)
    target      = returns + gamma ** n_steps * (1 - terminated) * Q_target(next_obs)[next_action]
    loss        = mean(IS weight * huber(Q_online(obs)[action] - target))
                  + demo_loss_weight * mean over demonstration rows and their valid cells a of
                    (centred Q(obs)[a] - centred expert value[a]) ** 2
                  (centred: minus the mean over the row's valid cells; see expert_value_loss)
    Adam step with gradient-norm clipping; every `target_update_every` updates
    target <- tau * online + (1 - tau) * target (tau = 1: hard copy, tau < 1: Polyak).

On CUDA the forward passes run under bf16 or fp16 autocast (fp16 with a gradient scaler);
losses, targets and TD errors are computed in float32. On CPU everything is float32.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .networks import masked_argmax
from .demonstrations import DemonstrationBatch
from .replay import ReplayBatch

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def expert_value_loss(q: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error between Q-values and the expert's values over valid cells, each
    centred on its row's mean over those cells: it teaches how much better one cell is than
    another (what the greedy policy acts on) and leaves the level of Q, the return still to
    come, to the TD loss. q, values: (B, A) float; mask: (B, A) bool, True where valid."""
    mask = mask.float()
    count = mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    centred = lambda x: (x - (x * mask).sum(dim=1, keepdim=True) / count) * mask
    return ((centred(q) - centred(values)) ** 2).sum() / count.sum()


@dataclass
class DQNConfig:
    """All DQN hyperparameters and their defaults: the one table of them. The run config's
    ``learner:`` section (`firebreak.config.LearnerConfig`) exposes every field under the same
    name with this default, adding bounds and the scheduling keys. Steps count env steps,
    updates count gradient steps."""

    # Q-network, rebuilt with build_q_network(network, in_channels, **network_kwargs)
    network: str = "residual"
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    # targets
    gamma: float = 0.99
    n_step: int = 3
    double: bool = True
    # optimisation
    lr: float = 1e-4
    adam_eps: float = 1.5e-4
    batch_size: int = 64
    huber_delta: float = 1.0
    max_grad_norm: float = 10.0
    # target network: every target_update_every updates, target <- tau * online + (1 - tau) * target
    target_update_every: int = 500
    tau: float = 1.0
    # prioritized replay (capacity in observation slots, see replay.py); training starts once
    # the replay holds learning_starts transitions
    buffer_size: int = 50_000
    learning_starts: int = 1_000
    alpha: float = 0.6
    beta_start: float = 0.4
    beta_end: float = 1.0
    beta_anneal_updates: int = 50_000
    priority_eps: float = 1e-6
    # CUDA autocast dtype for forward passes: "bf16", "fp16" or "off" (ignored on CPU)
    autocast: str = "bf16"
    # rewards are multiplied by this when stored: the env's rewards are shares of burnable cells
    # (~1e-4 a step), far below a fresh network's output noise; 100 makes Q "percent saved"
    reward_scale: float = 100.0
    # demonstrations (see demonstrations.py): the expert-value loss, weighted by demo_loss_weight,
    # on demo_batch_fraction of every batch once any are loaded
    demo_loss_weight: float = 1.0
    demo_batch_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"DQNConfig.autocast must be one of {sorted(AUTOCAST_DTYPES)}, got {self.autocast!r}")


class DQNUpdate:
    """Owns the online and target Q-networks and the optimizer; one `update` per batch.

    q_network: any module mapping (B, C, H, W) float32 to (B, H*W) Q-values; the target
    network starts as a copy. device: default "cuda" if available, else "cpu".
    """

    def __init__(self, q_network: nn.Module, config: DQNConfig, device: str | torch.device | None = None):
        self.config = config
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.q_network = q_network.to(self.device)
        self.target_network = copy.deepcopy(self.q_network).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=config.lr, eps=config.adam_eps)
        self.amp_dtype = AUTOCAST_DTYPES[config.autocast] if self.device.type == "cuda" else None
        # fp16 gradients underflow without loss scaling; bf16 has float32's exponent range.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)
        self.num_updates = 0

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    @torch.no_grad()
    def td_target(
        self,
        returns: torch.Tensor,
        n_steps: torch.Tensor,
        terminated: torch.Tensor,
        next_obs: torch.Tensor,
        next_mask: torch.Tensor,
    ) -> torch.Tensor:
        """returns + gamma ** n_steps * (1 - terminated) * Q_target(next_obs, best valid action).

        returns (B,) float32, n_steps (B,) int, terminated (B,) bool, next_obs (B, C, H, W)
        float32, next_mask (B, H*W) bool. The best action is the online network's masked
        argmax (Double DQN) or the target network's (double=False).
        """
        # A terminal state may have no valid cell left; its value is multiplied by 0 anyway.
        valid = next_mask | terminated[:, None]
        with self._autocast():
            next_q_target = self.target_network(next_obs).float()
            selector = self.q_network(next_obs).float() if self.config.double else next_q_target
        next_action = masked_argmax(selector, valid)
        next_q = next_q_target.gather(1, next_action[:, None]).squeeze(1)
        return returns + self.config.gamma ** n_steps.float() * (~terminated) * next_q

    def update(self, batch: ReplayBatch | None, demos: DemonstrationBatch | None = None
               ) -> tuple[dict[str, float], np.ndarray]:
        """One gradient step on `batch` (replay transitions) and/or `demos` (expert transitions,
        which also get the expert-value loss), stacked into one forward pass.

        Returns metrics {loss, q_mean, td_error (mean |TD|), grad_norm (before clipping), and
        expert_loss when demos are given} and the new priorities |TD error| of `batch`'s rows
        (B,) float32 numpy, for `update_priorities` (empty without a batch).
        """
        cfg = self.config
        parts = [p for p in (batch, demos) if p is not None]
        if not parts:
            raise ValueError("update: give a replay batch, demonstrations or both")
        stack = lambda field: np.concatenate([getattr(p, field) for p in parts])
        n_replay = 0 if batch is None else len(batch.action)
        # Observations travel as float16 (half the host-to-device bytes), widened on device.
        obs, next_obs = self._tensor(stack("obs")).float(), self._tensor(stack("next_obs")).float()
        action = self._tensor(stack("action"))
        returns, n_steps = self._tensor(stack("returns")), self._tensor(stack("n_steps"))
        terminated, next_mask = self._tensor(stack("terminated")), self._tensor(stack("next_mask"))
        weights = torch.ones(len(action), device=self.device)
        if batch is not None:
            weights[:n_replay] = self._tensor(batch.weights)

        target = self.td_target(returns, n_steps, terminated, next_obs, next_mask)
        with self._autocast():
            q_all = self.q_network(obs).float()
        q = q_all.gather(1, action[:, None]).squeeze(1)
        td_error = target - q.detach()  # for metrics and priorities only
        loss = (weights * F.huber_loss(q, target, reduction="none", delta=cfg.huber_delta)).mean()
        expert_loss = None
        if demos is not None:
            expert_loss = expert_value_loss(q_all[n_replay:], self._tensor(demos.values), self._tensor(demos.mask))
            loss = loss + cfg.demo_loss_weight * expert_loss

        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = nn.utils.clip_grad_norm_(self.q_network.parameters(), cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()

        self.num_updates += 1
        if self.num_updates % cfg.target_update_every == 0:
            with torch.no_grad():
                for target_param, param in zip(self.target_network.parameters(), self.q_network.parameters()):
                    target_param.lerp_(param, cfg.tau)

        names = ["loss", "q_mean", "td_error", "grad_norm"] + (["expert_loss"] if expert_loss is not None else [])
        values = [loss.detach(), q.detach().mean(), td_error.abs().mean(), grad_norm]
        values += [expert_loss.detach()] if expert_loss is not None else []
        metrics = dict(zip(names, torch.stack(values).tolist()))  # one device sync for all metrics
        return metrics, td_error[:n_replay].abs().cpu().numpy()

    def state_dict(self) -> dict:
        """Everything needed to resume, as tensors and plain containers (weights_only loadable)."""
        return {
            "q_network": self.q_network.state_dict(),
            "target_network": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "num_updates": torch.tensor(self.num_updates),
        }

    def load_state_dict(self, state: dict) -> None:
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.num_updates = int(state["num_updates"])

    def get_weights(self) -> dict[str, torch.Tensor]:
        """Online network weights as CPU tensors, for actors' `load_state_dict`."""
        # clone: on a CPU learner .cpu() returns the live parameters, which later updates change
        return {name: tensor.detach().cpu().clone() for name, tensor in self.q_network.state_dict().items()}

    def set_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Load weights into the online network and copy them to the target (a fresh start)."""
        self.q_network.load_state_dict(weights)
        self.target_network.load_state_dict(weights)
