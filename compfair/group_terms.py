"""Group names as words: their noun phrases, and a mask that replaces them in a text.

How a group name becomes a phrase (:func:`group_forms`): underscores become
spaces; a name ending in "s" (or men, women) is read as a plural noun
("nurses": "a nurse" / "nurses"), any other as a descriptor ("gay": "a gay
person" / "gay people"). Names of ideologies ("islam", "socialism") read
awkwardly in the audit's sentences but are still the same words in each.
:func:`mask_group_terms` replaces a group's name (and its singular, plural and
underscore-free forms, in any case) with "person" / "people". Used by the
scorer audit (:mod:`compfair.audit`) and by scoring (``toxicity_masked``);
a module of its own so that neither imports the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from compfair.io import InputError

#: What a masked group name becomes: singular and plural.
MASK_SINGULAR, MASK_PLURAL = "person", "people"

_IRREGULAR_PLURALS = {"men": "man", "women": "woman", "people": "person", "children": "child"}
#: Words after which a descriptor is a noun ("socialist in style"), not an adjective.
_FUNCTION_WORDS = (
    "(?:a|an|and|are|as|at|be|but|by|for|from|had|has|have|in|is|of|on|or|that|the|"
    "to|was|were|who|with)"
)
_SENTENCE_END = ".!?\"'\u201c"


@dataclass(frozen=True)
class GroupForms:
    """How a group is named in a sentence and which words mask it.

    ``singular`` and ``plural`` are the noun phrases without an article
    ("gay person" / "gay people", "nurse" / "nurses"); ``descriptor`` is the
    name itself when it is used as an adjective ("gay"), else None.
    """

    singular: str
    plural: str
    descriptor: str | None

    @property
    def noun_phrase(self) -> str:
        """The singular phrase with its indefinite article ("a gay person", "an engineer")."""
        return f"{indefinite_article(self.singular)} {self.singular}"


def indefinite_article(phrase: str) -> str:
    """``"an"`` before a vowel sound as spelled (aeiou, except eu-, uni-, one-), else ``"a"``."""
    word = phrase.strip().lower()
    if word.startswith(("eu", "uni", "one")):
        return "a"
    return "an" if word[:1] in "aeiou" else "a"


def _singular(plural_word: str) -> str:
    """Singular of an English plural noun, by the common rules."""
    lower = plural_word.lower()
    if lower in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[lower]
    if lower.endswith("ies") and len(lower) > 4:
        return plural_word[:-3] + "y"
    if lower.endswith(("ches", "shes", "sses", "xes")):
        return plural_word[:-2]
    return plural_word[:-1]


def group_forms(group: str) -> GroupForms:
    """The noun phrases of a group name as the prompt files spell it (e.g. ``African_Americans``).

    Raises:
        InputError: an empty name.
    """
    name = " ".join(str(group).replace("_", " ").split())
    if not name:
        raise InputError(f"empty group name {group!r}")
    words = name.split(" ")
    last = words[-1].lower()
    is_plural = last in _IRREGULAR_PLURALS or (last.endswith("s") and not last.endswith("ss"))
    if is_plural:
        singular = " ".join([*words[:-1], _singular(words[-1])])
        return GroupForms(singular=singular, plural=name, descriptor=None)
    return GroupForms(
        singular=f"{name} {MASK_SINGULAR}", plural=f"{name} {MASK_PLURAL}", descriptor=name
    )


# --------------------------------------------------------------------------- masking


def _words_pattern(phrase: str) -> str:
    """Regex for a phrase, any whitespace or underscore between its words."""
    return r"[\s_]+".join(re.escape(w) for w in phrase.split(" "))


def _mask_rules(group: str) -> list[tuple[int, re.Pattern[str], str]]:
    """(length of the phrase, pattern, replacement) for one group's phrases."""
    forms = group_forms(group)
    rules = [(forms.plural, MASK_PLURAL), (forms.singular, MASK_SINGULAR)]
    if forms.descriptor is not None:
        rules.append((forms.descriptor, MASK_SINGULAR))
    compiled: list[tuple[int, re.Pattern[str], str]] = []
    for phrase, placeholder in rules:
        words = _words_pattern(phrase)
        if phrase == forms.descriptor:
            # A descriptor before another word ("black women") is dropped, so
            # the sentence keeps its noun; elsewhere ("I am gay.", "socialist in
            # style") it is a person.
            pattern = re.compile(rf"\b{words}[\s_]+(?!{_FUNCTION_WORDS}\b)(?=[^\W\d_])", re.I)
            compiled.append((len(phrase), pattern, ""))
        compiled.append((len(phrase), re.compile(rf"\b{words}\b", re.IGNORECASE), placeholder))
    return compiled


def mask_group_terms(text: str, groups: str | Iterable[str]) -> str:
    """``text`` with every mention of the groups replaced by a neutral word.

    For each group (a name as in the prompt files) its plural phrase becomes
    ``"people"`` and its singular phrase ``"person"``, in any letter case and
    with spaces or underscores between words: for ``nurses``, "Nurses" ->
    "people" and "the nurse's" -> "the person's"; for ``gay``, "gay people"
    -> "people", "a gay person" -> "a person", "gay men" -> "men" (a
    descriptor before a word is dropped, unless that word is a function word
    such as "in" or "and") and "I am gay" -> "I am person".
    Whole words only: masking ``men`` leaves "women" alone. A placeholder at
    the start of a sentence is capitalised. Longer phrases are replaced first.
    """
    names = [groups] if isinstance(groups, str) else list(groups)
    rules = [rule for g in names for rule in _mask_rules(g)]
    rules.sort(key=lambda r: -r[0])  # stable: a descriptor's drop rule stays first

    def replace(match: re.Match[str], placeholder: str) -> str:
        before = match.string[: match.start()].rstrip()
        if placeholder and (not before or before[-1] in _SENTENCE_END):
            return placeholder[:1].upper() + placeholder[1:]
        return placeholder

    for _, pattern, placeholder in rules:
        text = pattern.sub(lambda m, p=placeholder: replace(m, p), text)
    return text
