"""vp-mcp: VP Mission Control as MCP tools for agents (see README "Agents over MCP").

A client of the dispatcher and the registry through services.client; it keeps
no state of its own, so a restart loses nothing (MCP tasks are missions)."""
