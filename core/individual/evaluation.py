"""One evaluation: the results table of learngene, scratch and (when asked) the baselines on the same target tasks.

Every method sees the same target tasks and, per task, the same seed; each task gets a fresh model (the official
code reuses one). Evaluation is deterministic (normalise only); training may use light shift augmentation.
"""

from __future__ import annotations

from typing import Callable, Iterable

from core.collective.runs import Run
from core.events import Listener
from core.individual.baselines import baseline_methods
from core.individual.config import IndividualConfig
from core.individual.methods import individual_method, run_methods
from core.individual.model import fitted_spec
from core.individual.targets import Targets, fitting_query, make_targets, run_imageset
from core.learngene.gene import Learngene


def evaluate(
    run: Run,
    learngene: Learngene,
    config: IndividualConfig,
    *,
    way: int = 5,
    shot: int = 10,
    tasks: int = 5,
    baselines: bool = False,
    targets: Targets | None = None,
    root: str | None = None,
    device: str = "cpu",
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """The results table: learngene and scratch (same architecture), plus the baselines when asked.

    Without `targets`, M tasks are drawn with config.query query images per class (fewer if the classes run out).
    """
    config.validate()
    if targets is None:
        imageset = run_imageset(run, root)
        query = fitting_query(config.query, imageset, shot)
        targets = make_targets(run, imageset, way=way, shot=shot, query=query, tasks=tasks, seed=config.seed, device=device)
    spec = fitted_spec(learngene, targets.way, config)
    methods = [individual_method("learngene", spec, config, learngene, device), individual_method("scratch", spec, config, None, device)]
    if baselines:
        methods += baseline_methods(run, learngene, targets.way, config, device)
    return run_methods(methods, targets, listeners=listeners, should_stop=should_stop)
