"""The identity verbs: agent keys (``identity keygen|register|list|revoke``), the operator's mandatory-as_agent
namespaces (``visibility require|release|list``) and ``taxonomy``.

The CLI works on the node's data directory with the node's own key, so it acts as the operator: revoking a key
and requiring as_agent are allowed here without the HTTP admin token.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nacl.signing import SigningKey

from producers.cli.spec import VerbSpec, emit, open_node
from producers.errors import ValidationError
from producers.identity.agent_client import load_agent_key
from producers.input.validation import check_agent_id
from producers.memory.taxonomy import as_agent_param, visible_taxonomy
from producers.runtime.node import NodeConfig
from schemas.request_signing import b64url, key_id_for, sign_registration

__all__ = ["VERBS", "agent_key_path", "load_agent_key", "write_agent_key"]

OPERATOR_ACTOR = "operator:cli"


def agent_key_path(key_dir: Path, agent_id: str) -> Path:
    """``<agent id>.priv`` with the characters a file name cannot hold replaced (``/`` → ``_``)."""
    return key_dir / (agent_id.replace("/", "_") + ".priv")


def write_agent_key(key_dir: Path, agent_id: str) -> SigningKey:
    """A new Ed25519 key for ``agent_id``: ``<id>.priv`` (the 32-byte seed, mode 0600) and ``<id>.pub``."""
    key_dir.mkdir(parents=True, exist_ok=True)
    path = agent_key_path(key_dir, agent_id)
    if path.exists():
        raise ValidationError(f"{path} exists: remove it first to make a new key")
    key = SigningKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(bytes(key))
    path.with_suffix(".pub").write_bytes(bytes(key.verify_key))
    return key


def _key_dir(args: argparse.Namespace, config: NodeConfig) -> Path:
    return Path(args.key_dir).expanduser() if args.key_dir else config.data_dir / "agent-keys"


def _identity_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    keygen = sub.add_parser("keygen", help="make an Ed25519 key for an agent (files only; see register)")
    register = sub.add_parser("register", help="register an agent's public key on the node (an event)")
    for q in (keygen, register):
        q.add_argument("--agent", required=True, help="the agent id the key is for")
        q.add_argument("--key-dir", help="where agent keys live (default: <data dir>/agent-keys)")
    register.add_argument("--key", help="the agent's .priv file (default: <key dir>/<agent>.priv)")
    sub.add_parser("list", help="registered agent keys")
    revoke = sub.add_parser("revoke", help="withdraw an agent's key (operator)")
    revoke.add_argument("--agent", required=True)
    revoke.add_argument("--reason", default="")


async def _identity(args: argparse.Namespace, config: NodeConfig) -> int:
    if args.action == "keygen":
        agent = check_agent_id(args.agent)
        key = write_agent_key(_key_dir(args, config), agent)
        emit({"agent_id": agent, "key_id": key_id_for(bytes(key.verify_key)),
              "public_key": b64url(bytes(key.verify_key)), "private_key_file": str(agent_key_path(
                  _key_dir(args, config), agent))})
        return 0
    async with open_node(config) as node:
        if args.action == "register":
            agent = check_agent_id(args.agent)
            key = load_agent_key(Path(args.key) if args.key else agent_key_path(_key_dir(args, config), agent))
            body = sign_registration(key, agent)
            stored, write = await node.identity.register_key(agent, body["public_key"], body["timestamp"],
                                                             body["proof"], actor=agent, operator=True)
            emit({**stored.to_api(), "offset": write.offset})
        elif args.action == "list":
            keys = [k.to_api() for k in await node.identity.keys()]
            emit({"keys": keys, "count": len(keys)})
        else:
            write = await node.identity.revoke_key(args.agent, actor=OPERATOR_ACTOR, reason=args.reason)
            emit({"revoked": True, "agent_id": args.agent, "offset": write.offset})
    return 0


def _visibility_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    for name, text in (("require", "make as_agent mandatory for reads in PREFIX and below"),
                       ("release", "lift that requirement")):
        q = sub.add_parser(name, help=text)
        q.add_argument("prefix")
        q.add_argument("--reason", default="")
    sub.add_parser("list", help="namespace prefixes where as_agent is mandatory")


async def _visibility(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        if args.action == "list":
            prefixes = await node.identity.required_prefixes()
            emit({"prefixes": prefixes, "count": len(prefixes)})
            return 0
        required = args.action == "require"
        write = await node.identity.set_as_agent_required(args.prefix, required, actor=OPERATOR_ACTOR,
                                                          reason=args.reason)
        emit({"prefix": args.prefix, "required": required, "offset": write.offset})
    return 0


def _taxonomy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prefix", default="")
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--as-agent", help="count only what this agent namespace may see")


async def _taxonomy(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        emit(await visible_taxonomy(node, prefix=args.prefix, depth=args.depth, limit=args.limit,
                                    as_agent=as_agent_param({"as_agent": args.as_agent})))
    return 0


VERBS = [
    VerbSpec("identity", "agent keys: keygen, register, list, revoke (attested agent identity)", _identity_args,
             _identity),
    VerbSpec("visibility", "namespaces where reads must name as_agent: require, release, list", _visibility_args,
             _visibility),
    VerbSpec("taxonomy", "the namespace tree with memory counts", _taxonomy_args, _taxonomy),
]
