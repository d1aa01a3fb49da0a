"""The embedded stack: template.yaml itself, created inside moto, with real handlers.

Nothing here is a second copy of the stack: the template is SAM-translated and created through
moto's CloudFormation; Lambda invocations run the handlers the template names, in-process; the
AWS behaviours moto is laxer about are restored in :mod:`orgkms.local.fidelity`.
"""

from orgkms.local.stack import EmbeddedStack

__all__ = ["EmbeddedStack"]
