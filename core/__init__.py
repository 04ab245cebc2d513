"""igkit: Integrated Gradients for PyTorch, with a completeness check that picks the step count."""
from .aggregate import aggregate
from .baselines import as_input_tuple, resolve_baselines
from .domain import Domain, Prepared
from .errors import IGInputError, NonFiniteError
from .evaluation import ablation_curve, aopc, attribution_auc, fraction_inside, kendall_tau
from .explain import explain_items, write_summary
from .hookspecs import hookimpl
from .integrated import integrated_gradients
from .layers import forward_with_module_output, module_output
from .methods import METHODS, attribute, get_method, gradients_at
from .plugin_manager import domains, get_domain, list_plugins, register, unregister
from .progress import progress
from .quadrature import RULES, quadrature
from .result import IGResult
from .saturation import layer_saturation, score_curve

__version__ = "0.1.0"

__all__ = [
    "IGInputError", "IGResult", "METHODS", "NonFiniteError", "Domain", "Prepared", "RULES",
    "ablation_curve", "aggregate", "aopc", "as_input_tuple", "attribute", "attribution_auc",
    "domains", "explain_items", "forward_with_module_output", "fraction_inside", "get_domain",
    "get_method", "gradients_at", "hookimpl", "integrated_gradients", "kendall_tau",
    "layer_saturation", "list_plugins", "module_output", "progress", "quadrature", "register",
    "resolve_baselines", "score_curve", "unregister", "write_summary",
]
