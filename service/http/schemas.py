"""Request and response models of the wire contract (API.md): the one schema module of the
HTTP layer. /execute-tests and the shared verdict models first, then /score, /rerank and
GET /models."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox_worker.protocol import RunStatus, TestSpec, TestVerdict
from service.config import Settings
from service.errors import BadRequest, TooLarge


class Submission(BaseModel):
    """One program and its tests: a list of asserts (AceCode's format), or a test object of
    another kind (`stdio`, `call`; see README "Test formats and languages")."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=256)
    code: str
    tests: list[str] | TestSpec
    language: str = Field(default="python", max_length=40,
                          description="python (default), c, cpp, java, go, rust, javascript")


class ExecuteRequest(BaseModel):
    """POST /execute-tests body."""

    model_config = ConfigDict(extra="forbid")

    submissions: list[Submission] = Field(min_length=1)
    timeout_s: float | None = Field(default=None, gt=0, description="limit per test, seconds")
    memory_mb: int | None = Field(default=None, gt=0, description="address space, MiB")
    program_timeout_s: float | None = Field(
        default=None, gt=0, description="limit on one program's tests together, seconds; "
        "tests not started by then are not_run")


class SubmissionResult(BaseModel):
    """One submission's outcome."""

    id: str | None = None
    status: RunStatus
    pass_rate: float
    passed: int
    total: int
    tests: list[TestVerdict]


class ExecuteResponse(BaseModel):
    """POST /execute-tests response: one result per submission, in order."""

    results: list[SubmissionResult]


class ErrorBody(BaseModel):
    """Every non-422 error body."""

    detail: str
    request_id: str | None = None


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=64)
    content: str


class ScoreItemIn(BaseModel):
    """Either `prompt` + `response`, or an explicit `messages` list."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    response: str | None = None
    messages: list[ChatMessage] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        pair = self.prompt is not None or self.response is not None
        if self.messages is not None:
            if pair:
                raise ValueError("give either prompt+response or messages, not both")
            if not self.messages:
                raise ValueError("messages must not be empty")
        elif self.prompt is None or self.response is None:
            raise ValueError("an item needs prompt and response, or messages")
        return self

    def as_messages(self) -> list[dict[str, str]]:
        """The item as chat turns (prompt + response: a user and an assistant turn)."""
        if self.messages is not None:
            return [{"role": m.role, "content": m.content} for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""},
                {"role": "assistant", "content": self.response or ""}]


class ScoreRequest(BaseModel):
    """POST /score body."""

    model_config = ConfigDict(extra="forbid")

    items: list[ScoreItemIn]
    model: str | None = None


class Usage(BaseModel):
    """Tokens scored and items cut to the model's max length."""

    tokens: int
    truncated: int


class ScoreResponse(BaseModel):
    """`scores[i]` belongs to `items[i]`."""

    model: str
    scores: list[float]
    usage: Usage


class RerankRequest(BaseModel):
    """POST /rerank body; `timeout_s`/`memory_mb` are execution limits as in /execute-tests."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    candidates: list[str]
    top_k: int | None = Field(default=None, ge=1)
    tests: list[str] | TestSpec | None = None
    language: str = Field(default="python", max_length=40)
    model: str | None = None
    timeout_s: float | None = Field(default=None, gt=0, description="limit per test, seconds")
    memory_mb: int | None = Field(default=None, gt=0, description="address space, MiB")


class RerankResult(BaseModel):
    """One candidate's place; `pass_rate` is null without tests."""

    index: int
    score: float
    pass_rate: float | None


class RerankResponse(BaseModel):
    """Results best first."""

    model: str
    results: list[RerankResult]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """One loaded model."""

    name: str
    backend: str
    dtype: str
    device: str
    max_length: int
    parameters: int
    default: bool
    chat_template: bool
    reward: str = "classifier"  # "mean_logprob": mean token log-probability of a causal LM


class ModelsResponse(BaseModel):
    """GET /models."""

    default: str | None
    models: list[ModelCard]


def check_texts(settings: Settings, texts: list[str]) -> None:
    """413 when any one text is over `max_text_chars`."""
    for text in texts:
        if len(text) > settings.max_text_chars:
            raise TooLarge(f"a text of {len(text)} chars over the limit of "
                           f"{settings.max_text_chars}")


def check_score(settings: Settings, body: ScoreRequest) -> None:
    """400 for no items, 413 for too many items or too long a text."""
    if not body.items:
        raise BadRequest("items is empty: nothing to score")
    if len(body.items) > settings.max_items:
        raise TooLarge(f"{len(body.items)} items over the limit of {settings.max_items}")
    check_texts(settings, [m["content"] for item in body.items for m in item.as_messages()])


def check_rerank(settings: Settings, body: RerankRequest) -> None:
    """400 for no candidates, 413 for too many candidates or too long a text."""
    if not body.candidates:
        raise BadRequest("candidates is empty: nothing to rerank")
    if len(body.candidates) > settings.max_candidates:
        raise TooLarge(f"{len(body.candidates)} candidates over the limit of "
                       f"{settings.max_candidates}")
    check_texts(settings, [body.prompt, *body.candidates])


class LanguageCard(BaseModel):
    """One language the sandbox can run."""

    name: str
    version: str = Field(description="the toolchain's version line")
    kinds: list[str] = Field(description="test kinds it runs")


class LanguagesResponse(BaseModel):
    """GET /languages."""

    known: bool = Field(description="false while the backend has not said (no worker yet)")
    languages: list[LanguageCard]
    all: list[str] = Field(description="every language name the protocol knows")
    aliases: dict[str, str]
