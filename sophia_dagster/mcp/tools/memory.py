"""Memory tools: search the knowledge base and read a user's conversation context (UnifiedMemoryService)."""

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from sophia_dagster.mcp.platform import McpPlatform

READ = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


class KnowledgeHit(BaseModel):
    """A document of the knowledge base and its similarity to the query."""

    id: str
    content: str
    metadata: dict[str, Any]
    score: float


class MemoryAnswer(BaseModel):
    """Which tier answered, and whether part of memory was unavailable (``degraded`` with the reasons)."""

    tier: str
    degraded: bool
    reasons: list[str]


class KnowledgeResults(MemoryAnswer):
    """Documents found by a knowledge search."""

    hits: list[KnowledgeHit] | None = Field(description="None when the knowledge tier could not answer")


class ConversationContext(MemoryAnswer):
    """A user's latest messages, oldest first."""

    messages: list[dict[str, Any]] | None = Field(description="None when no tier could answer")


def register(server: MCPServer, platform: McpPlatform) -> None:
    """Add the memory tools to ``server``."""
    guard = platform.guard

    @server.tool(name="search_knowledge", annotations=READ)
    def search_knowledge_tool(query: str, limit: int = Field(5, ge=1, le=50)) -> KnowledgeResults:
        """Search the knowledge base for the documents nearest to ``query``."""

        def read() -> KnowledgeResults:
            result = platform.memory().search_knowledge(query, limit)
            hits = None if result.value is None else [KnowledgeHit(**vars(hit)) for hit in result.value]
            return KnowledgeResults(tier=result.tier, degraded=result.degraded, reasons=list(result.reasons), hits=hits)

        return guard.read("search_knowledge", read)

    @server.tool(name="conversation_context", annotations=READ)
    def conversation_context_tool(user_id: str, limit: int = Field(20, ge=1, le=200)) -> ConversationContext:
        """A user's latest conversation messages, oldest first."""

        def read() -> ConversationContext:
            result = platform.memory().get_conversation_context(user_id, limit)
            return ConversationContext(
                tier=result.tier, degraded=result.degraded, reasons=list(result.reasons), messages=result.value
            )

        return guard.read("conversation_context", read)
