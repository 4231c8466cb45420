// Package firmware is the agent's over-the-air updates (issue 6): signed
// bundles and their verification, A/B slots with an atomic switch, a trial
// and rollback, the update job documents and their transports (https with
// Range resume, MQTT block streams asked for by offset), and the launcher
// that runs the current slot and watches a new version's trial. The
// agent's side of a job is agent/updater.go; README.md has the protocol
// and what a power cut leaves at each step.
//
// A bundle is one uncompressed tar, read in a single pass:
//
//	manifest.json   the manifest (JSON, below); its exact bytes are signed
//	manifest.sig    64 bytes: Ed25519 signature over manifest.json
//	files/PATH...   the payload, one regular file per manifest entry
//
// The manifest names the release and lists every payload file with its
// size, SHA-256 and mode:
//
//	{"format":1, "product":"streamqc", "version":"1.2.3",
//	 "os":"linux", "arch":"amd64", "flavor":"cpu", "min_config_version":0,
//	 "created":"2025-01-02T03:04:05Z", "key_id":"0123456789abcdef",
//	 "files":[{"path":"streamqc","sha256":"...","size":123,"mode":"0755"}]}
//
// key_id is the hex of the first 8 bytes of SHA-256 of the signing public
// key. Because the signature covers the file hashes, files of two signed
// releases cannot be mixed.
//
// Verify (and Extract, which verifies while writing) refuses a bundle,
// with an error wrapping one of ErrSignature, ErrUnknownKey, ErrTarget,
// ErrDowngrade, ErrCorrupt or ErrTooLarge, when: the signature is missing
// or does not match any trusted key; the manifest is not the first entry,
// is not strict JSON of this format (unknown fields refused) or names
// another os/arch/flavor; the version is not newer than the installed one
// (unless downgrades are allowed; the same version is "already installed");
// an entry is not a regular file under files/ with a clean relative path,
// permission bits only and the manifest's size, mode and SHA-256; a file is
// missing, repeated or not in the manifest; the tar is truncated (the
// end-of-archive blocks included); or the stream goes past the size limit,
// which is enforced while reading. The signature is checked before anything
// in the manifest is believed, and the target before the payload is read.
//
// Trusted keys come from public-key files the local configuration lists
// (LoadTrusted), never from the broker or the bundle.
package firmware
