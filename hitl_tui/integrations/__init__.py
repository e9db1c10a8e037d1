"""Adapters between agent frameworks and the gate: Claude Code (hook, MCP permission prompt, settings
import), Gemini CLI policy import, the OpenAI Agents SDK and LangChain / LangGraph.

Each module imports its framework lazily (or only when used), so ``hitl hook claude-code`` starts
without loading any of them.
"""
