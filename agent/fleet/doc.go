// Package fleet is the agent's config plane: the desired config documents
// operators write (one per agent, plus fleet-wide defaults), their validation
// (schema, then every field against the agent's policy), the merge into
// per-stream settings, and the last good documents on disk. The topic tree
// they travel on is the published contract, in package schema.
package fleet
