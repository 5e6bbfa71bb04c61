"""promptfoo's provider ids as litellm model names: ``openai:gpt-4o-mini`` -> ``openai/gpt-4o-mini``,
``anthropic:messages:claude-3-5-haiku-latest`` -> ``anthropic/claude-3-5-haiku-latest``,
``ollama:chat:llama3`` -> ``ollama_chat/llama3``."""

from __future__ import annotations

# promptfoo's provider prefix -> litellm's
PREFIXES = {
    "openai": "openai", "anthropic": "anthropic", "azure": "azure", "azureopenai": "azure", "bedrock": "bedrock",
    "vertex": "vertex_ai", "google": "gemini", "gemini": "gemini", "mistral": "mistral", "groq": "groq",
    "openrouter": "openrouter", "togetherai": "together_ai", "deepseek": "deepseek", "perplexity": "perplexity",
    "cohere": "cohere", "fireworks": "fireworks_ai", "xai": "xai", "huggingface": "huggingface",
    "ollama": "ollama_chat", "cerebras": "cerebras", "deepinfra": "deepinfra", "replicate": "replicate",
}
KINDS = ("chat", "completion", "messages", "text-generation", "responses")


class ProviderProblem(ValueError):
    pass


def litellm_model(provider: str) -> str:
    """The litellm model name for a promptfoo provider id; raises ``ProviderProblem`` (one line
    with the fix) for one we cannot map."""
    if ":" not in provider:  # a litellm name already (openai/gpt-4o-mini)
        return provider
    prefix, _, rest = provider.partition(":")
    if prefix not in PREFIXES or not rest:
        raise ProviderProblem(
            f"provider {provider!r} has no litellm equivalent here; name a model configured in promstack.yaml "
            f"(models:) or a litellm model name, or use one of the promptfoo prefixes {', '.join(sorted(PREFIXES))}")
    kind, _, model = rest.partition(":")
    if kind in KINDS and model:
        rest = model
    if prefix == "ollama" and kind == "completion":
        return f"ollama/{rest}"
    return f"{PREFIXES[prefix]}/{rest}"
