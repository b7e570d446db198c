"""Agent skills (agentskills.io ``SKILL.md``: YAML frontmatter + a markdown body + optional resources), the
original's v0.7.0 skills registry, kept as memories.

A skill version is one memory in ``_skills/<namespace>`` (a ``memory.stored`` event: signed, replayed into every
read model, on every node), titled ``skill:<name>@<digest prefix>``, whose body is the skill's body and whose
``metadata.skill`` holds the manifest, the digest and the resources (base64, each with its SHA-256).
Registering a new version of ``(namespace, name)`` marks the previous one ``superseded_by`` (a
``memory.updated`` event), so "current" is a projection of the log like everything else.

The frontmatter reader takes the subset of YAML that SKILL.md files use (scalars, quoted or not; lists of
scalars; one level of mapping under ``metadata``), so no YAML library is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from producers.errors import NotFoundError, ValidationError
from producers.input.commands import CreateCommand, UpdateCommand, parse_list_query
from producers.input.validation import check_namespace

if TYPE_CHECKING:
    from producers.memory.service import MemoryService
    from schemas import Memory

__all__ = ["MAX_RESOURCE_BYTES", "SkillManifest", "SkillService", "check_skill_name", "parse_skill_md",
           "read_skill_folder", "skill_of"]

SKILL_TAG = "skill"
#: All resources of one skill together, decoded (they travel in the event).
MAX_RESOURCE_BYTES = 1_048_576
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_KEYS = ("namespace", "name", "description", "license", "compatibility", "allowed-tools", "allowed_tools",
         "composes_with_reflections")


@dataclass(frozen=True)
class SkillManifest:
    namespace: str
    name: str
    description: str
    body: str
    license: str | None = None
    compatibility: str | None = None
    allowed_tools: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def frontmatter(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "description": self.description,
                "license": self.license, "compatibility": self.compatibility, "allowed_tools": self.allowed_tools}


def _scalar(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        inner = text[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\") if text[0] == '"' else inner.replace("''", "'")
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"true": True, "false": False, "null": None, "~": None}.get(text, text)


def _frontmatter(yaml: str) -> dict[str, Any]:
    """``key: value`` lines, ``key:`` followed by ``- item`` lines (a list) or indented ``k: v`` lines (a map,
    or a list of maps for ``- k: v`` items)."""
    out: dict[str, Any] = {}
    key: str | None = None
    for raw in yaml.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw[0].isspace():
            name, sep, value = raw.partition(":")
            if not sep:
                raise ValidationError(f"SKILL.md frontmatter YAML parse error: expected 'key: value', got {raw!r}")
            key = name.strip()
            out[key] = _scalar(value) if value.strip() else None
            continue
        if key is None:
            raise ValidationError(f"SKILL.md frontmatter YAML parse error: unexpected indentation: {raw!r}")
        line = raw.strip()
        if line.startswith("- "):
            items = out[key] if isinstance(out[key], list) else []
            item = line[2:]
            sub, sep, value = item.partition(":")
            items.append({sub.strip(): _scalar(value)} if sep and not item.startswith(("'", '"')) else _scalar(item))
            out[key] = items
        else:
            sub, _, value = line.partition(":")
            target = out[key]
            if isinstance(target, list) and target and isinstance(target[-1], dict):
                target[-1][sub.strip()] = _scalar(value)
            else:
                out[key] = {**(target if isinstance(target, dict) else {}), sub.strip(): _scalar(value)}
    return out


def _required(fm: dict[str, Any], name: str) -> str:
    value = fm.get(name)
    if not isinstance(value, str) or not value:
        raise ValidationError(f"SKILL.md frontmatter missing required field '{name}'")
    return value


def _optional(fm: dict[str, Any], name: str, limit: int) -> str | None:
    value = fm.get(name)
    if value in (None, ""):
        return None
    text = str(value)
    if len(text) > limit:
        raise ValidationError(f"skill '{name}' must be \u2264 {limit} characters (agentskills.io spec): got "
                              f"{len(text)} characters")
    return text


def check_skill_name(name: str) -> str:
    """agentskills.io names: 1-64 lowercase letters and digits, single hyphens between them."""
    if not _NAME.match(name) or len(name) > 64:
        raise ValidationError(f"skill name '{name}' must be 1-64 lowercase letters, digits and single hyphens")
    return name


def parse_skill_md(source: str) -> SkillManifest:
    """A SKILL.md text, validated with the original's messages."""
    if not source.startswith("---"):
        raise ValidationError("SKILL.md must begin with a '---' YAML frontmatter fence")
    inner = source[3:].lstrip("\r\n")
    end = inner.find("\n---")
    if end < 0:
        raise ValidationError("SKILL.md frontmatter is not closed with a '---' fence")
    fm = _frontmatter(inner[:end])
    name = check_skill_name(_required(fm, "name"))
    description = _required(fm, "description")
    if len(description) > 1024:
        raise ValidationError(f"skill 'description' must be \u2264 1024 characters (agentskills.io spec \u00a73.2): "
                              f"got {len(description)} characters")
    tools = fm.get("allowed-tools", fm.get("allowed_tools")) or []
    tools = tools.split() if isinstance(tools, str) else [str(t) for t in tools]
    extra = {k: v for k, v in fm.items() if k not in _KEYS}
    metadata = extra.pop("metadata") if isinstance(extra.get("metadata"), dict) else {}
    metadata = {**extra, **metadata}
    if isinstance(fm.get("composes_with_reflections"), list):
        metadata["composes_with_reflections"] = _composes(fm["composes_with_reflections"])
    return SkillManifest(namespace=check_namespace(_required(fm, "namespace")), name=name, description=description,
                         body=inner[end + 4:].lstrip("\n"), license=_optional(fm, "license", 200),
                         compatibility=_optional(fm, "compatibility", 500), allowed_tools=tools, metadata=metadata)


def _composes(entries: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, entry in enumerate(entries):
        ns = entry.get("namespace") if isinstance(entry, dict) else None
        if not isinstance(ns, str) or not ns:
            raise ValidationError(f"composes_with_reflections[{i}] missing required field 'namespace'")
        depth = entry.get("min_depth", 0)
        out.append({"namespace": ns, "min_depth": depth if isinstance(depth, int) else 0})
    return out


def read_skill_folder(folder: Path) -> tuple[str, list[tuple[str, bytes]]]:
    """SKILL.md and every file under ``resources/`` (relative paths), as the original reads a skill folder."""
    if not folder.is_dir():
        raise ValidationError(f"folder_path '{folder}' is not a directory or does not exist")
    try:
        text = (folder / "SKILL.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read SKILL.md in '{folder}': {exc}") from None
    root = folder / "resources"
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    return text, [(p.relative_to(root).as_posix(), p.read_bytes()) for p in files]


def _digest(manifest: SkillManifest, resources: list[dict[str, Any]]) -> str:
    h = hashlib.sha256(json.dumps(manifest.frontmatter(), sort_keys=True, separators=(",", ":")).encode())
    h.update(b"\0" + manifest.body.encode("utf-8"))
    for res in resources:
        h.update(b"\0" + bytes.fromhex(res["digest"]))
    return h.hexdigest()


def skill_of(memory: Memory) -> dict[str, Any]:
    """The public view of a skill memory (the original's skill_get fields, body and resource bodies aside)."""
    meta = memory.metadata.get("skill")
    if not isinstance(meta, dict):
        raise NotFoundError(f"skill not found: {memory.id}")
    out = {"id": memory.id, "namespace": meta["namespace"], "name": meta["name"], "description": meta["description"],
           "digest": meta["digest"], "created_at": memory.created_at}
    for name in ("license", "compatibility", "signing_agent", "superseded_by"):
        if meta.get(name) is not None:
            out[name] = meta[name]
    return out


class SkillService:
    """Register, list and read skills over the memory service (all writes are memory events)."""

    def __init__(self, service: MemoryService) -> None:
        self.service = service

    async def register(self, manifest: SkillManifest, files: list[tuple[str, bytes]], *, agent_id: str,
                       extra_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        if sum(len(content) for _, content in files) > MAX_RESOURCE_BYTES:
            raise ValidationError(f"skill resources exceed {MAX_RESOURCE_BYTES} bytes")
        resources = [{"path": path, "kind": "file", "digest": hashlib.sha256(content).hexdigest(),
                      "content_b64": base64.b64encode(content).decode()} for path, content in files]
        digest = _digest(manifest, resources)
        previous = await self.current(manifest.namespace, manifest.name)
        meta = {**manifest.frontmatter(), "metadata": {**manifest.metadata, **(extra_metadata or {})},
                "digest": digest, "resources": resources, "signing_agent": None, "superseded_by": None}
        cmd = CreateCommand(title=f"skill:{manifest.name}@{digest[:12]}", content=manifest.body or " ", tier="long",
                            namespace=_home(manifest.namespace), tags=[SKILL_TAG, _name_tag(manifest.name)],
                            source="api", metadata={"skill": meta}, on_conflict="version")
        stored = await self.service.store(cmd, agent_id=agent_id, metered=True)
        out = {"registered": True, "id": stored.memory.id, "namespace": manifest.namespace, "name": manifest.name,
               "digest": digest, "signed": False}
        if previous is not None:
            await self._supersede(previous, stored.memory.id, agent_id)
            out["superseded_id"] = previous.id
        return out

    async def _supersede(self, previous: Memory, new_id: str, agent_id: str) -> None:
        meta = dict(previous.metadata)
        meta["skill"] = {**meta["skill"], "superseded_by": new_id}
        await self.service.update(previous.id, UpdateCommand(metadata=meta), agent_id=agent_id)

    async def versions(self, namespace: str | None = None) -> list[Memory]:
        q = {"tag": SKILL_TAG, "limit": 1000, **({"namespace": _home(namespace)} if namespace else {})}
        return [m for m in await self.service.list_memories(parse_list_query(q, max_limit=1000))
                if isinstance(m.metadata.get("skill"), dict)]

    async def current(self, namespace: str, name: str) -> Memory | None:
        return next((m for m in await self.versions(namespace) if m.metadata["skill"]["name"] == name
                     and m.metadata["skill"].get("superseded_by") is None), None)

    async def get(self, skill_id: str) -> Memory:
        try:
            memory = await self.service.get(skill_id)
        except NotFoundError:
            raise NotFoundError(f"skill not found: {skill_id}") from None
        if not isinstance(memory.metadata.get("skill"), dict):
            raise NotFoundError(f"skill not found: {skill_id}")
        return memory


def _home(namespace: str) -> str:
    return check_namespace(f"_skills/{namespace}")


def _name_tag(name: str) -> str:
    return f"skill-name:{name}"
