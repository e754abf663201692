"""dsa.toml: how a platform's decisions become statements of reasons. It maps each list
category (csam, terrorism, ncii, ...) to a DSA statement category, keywords, the legal
ground and the explanation, and sets the platform's territorial scope, language,
reference URL and service name. Defaults for csam, terrorism and ncii follow the
Transparency Database's mapping for this field; any other category must be configured
(a legal category is never guessed). `hashmatch dsa init` writes the commented example
(EXAMPLE below)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

from hashmatch.accountability import enums
from hashmatch.errors import ConfigurationError

EU = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU",
      "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")
EEA = (*EU, "IS", "LI", "NO")


@dataclass(frozen=True)
class CategoryRule:
    """What a list category means in a statement of reasons."""

    category: str  # STATEMENT_CATEGORY_*
    keywords: tuple[str, ...]  # KEYWORD_*
    legal_ground: str  # illegal_content_legal_ground (max 500)
    explanation: str  # illegal_content_explanation (max 2,000)
    tco: bool = False  # counted in the terrorist-content (TCO Art. 7) report


DEFAULT_RULES = {
    "csam": CategoryRule(
        "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", ("KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL",),
        "Directive 2011/93/EU on combating the sexual abuse and sexual exploitation of children and child "
        "pornography, as transposed into national law; Regulation (EU) 2021/1232",
        "The content matched known child sexual abuse material listed by a child-protection clearing house. "
        "Possessing and distributing such material is illegal in every Member State."),
    "terrorism": CategoryRule(
        "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY", ("KEYWORD_TERRORIST_CONTENT",),
        "Regulation (EU) 2021/784 on addressing the dissemination of terrorist content online; Directive (EU) "
        "2017/541 on combating terrorism",
        "The content matched known terrorist content listed by a counter-terrorism clearing house.", tco=True),
    "ncii": CategoryRule(
        "STATEMENT_CATEGORY_CYBER_VIOLENCE", ("KEYWORD_NON_CONSENSUAL_IMAGE_SHARING",),
        "Directive (EU) 2024/1385 on combating violence against women and domestic violence (Article 5), as "
        "transposed into national law",
        "The content matched an intimate image that the person shown has reported as shared without consent."),
}


@dataclass(frozen=True)
class DsaConfig:
    territorial_scope: tuple[str, ...] = EEA
    content_language: str | None = None
    reference_url: str | None = None  # decision_ground_reference_url: the platform's policy page
    service: str = ""  # the service's name in reports
    rules: Mapping[str, CategoryRule] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def rule(self, category: str | None) -> CategoryRule | None:
        return self.rules.get(category) if category is not None else None


def load_config(path: str | None) -> DsaConfig:
    """The configuration in `path` (None: the defaults). ConfigurationError names the key
    that is wrong."""
    if path is None:
        return DsaConfig()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, where=path)


def parse_config(data: Mapping[str, Any], where: str = "dsa.toml") -> DsaConfig:
    unknown = set(data) - {"platform", "categories"}
    if unknown:
        raise ConfigurationError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")
    platform = data.get("platform", {})
    _only(platform, {"territorial_scope", "content_language", "reference_url", "service"}, f"{where} [platform]")
    scope = platform.get("territorial_scope", "EEA")
    if scope in ("EEA", "EU"):
        scope = EEA if scope == "EEA" else EU
    if not isinstance(scope, (list, tuple)) or not scope or any(c not in EEA for c in scope):
        raise ConfigurationError(f"{where}: territorial_scope must be \"EEA\", \"EU\" or a list of EU/EEA "
                                 f"ISO 3166 codes (Greece is GR)")
    language = platform.get("content_language")
    if language is not None and (not isinstance(language, str) or len(language) != 2 or not language.isupper()):
        raise ConfigurationError(f"{where}: content_language is an upper-case ISO 639-1 code, e.g. \"EN\"")
    url = platform.get("reference_url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
        raise ConfigurationError(f"{where}: reference_url must be an http(s) URL")
    rules = dict(DEFAULT_RULES)
    for name, spec in (data.get("categories") or {}).items():
        rules[name] = _rule(name, spec, rules.get(name), where)
    return DsaConfig(territorial_scope=tuple(dict.fromkeys(scope)), content_language=language, reference_url=url,
                     service=str(platform.get("service", "")), rules=rules)


def _rule(name: str, spec: Any, default: CategoryRule | None, where: str) -> CategoryRule:
    here = f"{where} [categories.{name}]"
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{here} must be a table")
    _only(spec, {"category", "keywords", "legal_ground", "explanation", "tco"}, here)
    base = default.__dict__ if default is not None else {"tco": False}
    merged = {**base, **spec}
    missing = [k for k in ("category", "legal_ground", "explanation") if not merged.get(k)]
    if missing:
        raise ConfigurationError(f"{here} needs {', '.join(missing)}")
    if merged["category"] not in enums.STATEMENT_CATEGORIES:
        raise ConfigurationError(f"{here}: category {merged['category']!r} is not a STATEMENT_CATEGORY_* value "
                                 f"of the current schema")
    keywords = tuple(merged.get("keywords") or ())
    bad = [k for k in keywords if k not in enums.KEYWORDS]
    if bad:
        raise ConfigurationError(f"{here}: {', '.join(bad)} not KEYWORD_* values of the current schema")
    if len(merged["legal_ground"]) > 500 or len(merged["explanation"]) > 2000:
        raise ConfigurationError(f"{here}: legal_ground is at most 500 characters, explanation at most 2,000")
    return CategoryRule(merged["category"], keywords, merged["legal_ground"], merged["explanation"],
                        bool(merged.get("tco", False)))


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")


EXAMPLE = '''\
# dsa.toml: how hashmatch writes statements of reasons (hashmatch dsa statements) and
# transparency counts (hashmatch dsa report). Every key is optional; csam, terrorism and
# ncii have built-in rules, any other list category needs a [categories.NAME] table.

[platform]
# Where the restriction applies: "EEA" (default), "EU", or a list of ISO codes (Greece is GR).
territorial_scope = "EEA"
# The content's language, upper-case ISO 639-1 (optional).
# content_language = "EN"
# The page of your terms or policy the decision relies on (decision_ground_reference_url).
# reference_url = "https://example.com/policies/illegal-content"
# The service's name in the transparency report.
service = "Example service"

# One table per list category (the category a list's entries carry: --category on import
# or fetch). category and keywords are values of the Transparency Database's schema.
# [categories.csam]
# category = "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
# keywords = ["KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"]
# legal_ground = "Directive 2011/93/EU ..., as transposed into national law"
# explanation = "The content matched known child sexual abuse material ..."
#
# [categories.terrorism]
# category = "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"
# keywords = ["KEYWORD_TERRORIST_CONTENT"]
# tco = true        # counted in the terrorist-content (TCO Art. 7) report
#
# [categories.extremism-local]
# category = "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
# keywords = ["KEYWORD_HATE_SPEECH"]
# legal_ground = "National law ..."
# explanation = "The content matched an entry of a list of illegal hate speech ..."
'''
