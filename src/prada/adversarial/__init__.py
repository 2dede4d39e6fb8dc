"""Domain-adversarial pieces (DANN): gradient reversal, λ schedule, domain classifier, objective."""

from prada.adversarial.classifier import DomainClassifier
from prada.adversarial.grl import GradReverse, grad_reverse
from prada.adversarial.loss import LossOutput, domain_loss, prada_objective
from prada.adversarial.schedule import dann_lambda

__all__ = [
    "DomainClassifier",
    "GradReverse",
    "LossOutput",
    "dann_lambda",
    "domain_loss",
    "grad_reverse",
    "prada_objective",
]
