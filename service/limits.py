"""Every request limit, declared once: its default, its bound and what it limits. `Settings` inherits these fields
(`RNNSERVE_MAX_TEXT_CHARS`, ...); the request models in `service.schemas` carry them as Field constraints, with the
defaults in the plain classes and the configured values in those from `limited_models(settings.limits())`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_text_chars: int = Field(default=10_000, ge=1, description="/sentiment, /ner text; prompt")
    max_batch_texts: int = Field(
        default=64, ge=1, description="texts in one /sentiment request; prompts in one /v1/completions"
    )
    max_ner_tokens: int = Field(default=512, ge=1, description="tokens in one /ner request")
    max_token_chars: int = Field(
        default=4096, ge=1, description="one pre-tokenized /ner token (room for a real URL: browsers keep 2,000+)"
    )
    max_new_tokens: int = Field(default=1000, ge=1, description="largest /generate max_new_tokens")
    max_stop_sequences: int = Field(default=4, ge=0, description="/generate stop strings")
    max_stop_chars: int = Field(default=64, ge=1, description="length of one stop string")


DEFAULT_LIMITS = Limits()
