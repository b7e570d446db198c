"""Tool handlers, one module per family (plus messaging, the LLM tools, and the not-yet-available ones).

:data:`HANDLERS` maps every one of the 74 tool names to its handler; a test pins that nothing is left out.
"""

from __future__ import annotations

from producers.tools import (
    archive,
    core,
    curation,
    duplicate,
    governance,
    graph,
    identity,
    knowledge,
    lifecycle,
    llm_tools,
    messaging,
    meta,
    missing,
    observations,
    reflection,
    replay,
    rules,
    sharing,
    skills,
    subscriptions,
    turns,
)
from producers.tools.base import Handler, ToolContext
from producers.tools.missing import MISSING

__all__ = ["HANDLERS", "MISSING", "Handler", "ToolContext"]

HANDLERS: dict[str, Handler] = {
    **core.HANDLERS, **lifecycle.HANDLERS, **meta.HANDLERS, **messaging.HANDLERS, **llm_tools.HANDLERS,
    **graph.HANDLERS, **knowledge.HANDLERS, **duplicate.HANDLERS, **subscriptions.HANDLERS, **archive.HANDLERS,
    **governance.HANDLERS, **reflection.HANDLERS, **sharing.HANDLERS, **turns.HANDLERS,
    **skills.HANDLERS, **rules.HANDLERS, **curation.HANDLERS,
    **observations.HANDLERS, **replay.HANDLERS,
    **missing.HANDLERS,
}
HANDLERS["memory_agent_register"] = identity.with_key_registration(HANDLERS["memory_agent_register"])
