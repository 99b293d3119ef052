"""GET /languages: the languages and test kinds this server's sandbox can run."""

from __future__ import annotations

from fastapi import APIRouter

from sandbox_worker import languages
from service.http.deps import SandboxDep
from service.http.schemas import LanguageCard, LanguagesResponse

router = APIRouter()

# other languages: stdio only
_KINDS = {"python": ["asserts", "stdio", "call", "unittest", "pytest"]}


@router.get("/languages", response_model=LanguagesResponse)
async def list_languages(sandbox: SandboxDep) -> LanguagesResponse:
    """Languages with a toolchain on the sandbox backend (with Redis workers: what the live
    workers announced; `known` is false until one has)."""
    found = sandbox.languages()
    cards = [LanguageCard(name=name, version=version, kinds=_KINDS.get(name, ["stdio"]))
             for name, version in (found or {}).items()]
    return LanguagesResponse(known=found is not None, languages=cards,
                             all=list(languages.LANGUAGES), aliases=dict(languages.ALIASES))
