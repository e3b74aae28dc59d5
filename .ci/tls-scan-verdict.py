#!/usr/bin/env python3
"""Verdict on one TLS listener's scans (testssl.sh's and sslyze's JSON reports), for
.ci/tls-scan.sh.

    tls-scan-verdict.py NAME TESTSSL_JSON SSLYZE_JSON

Fails (exit 1) on any vulnerability, obsolete protocol, weak cipher, curve or key
exchange, missing protection (secure renegotiation, downgrade protection, extended master
secret), TLS compression, 0-RTT data, or on a scan that did not run. Certificate findings
(trust, validity, revocation, CAA, transparency) are printed as notes: the examples serve
a generated self-signed certificate, explained in RELIABILITY.md ("TLS scans").
"""

import json
import re
import sys

name, testssl_path, sslyze_path = sys.argv[1:4]
failures = []
notes = []
checked = []


def fail(what):
    failures.append(what)


# ----- testssl.sh ---------------------------------------------------------------------
CERT_PREFIXES = ("cert", "OCSP", "DNS_CAA", "intermediate_cert", "chain_of_trust")
# Checks that must have run (a report without them is a scan that failed).
MUST_RUN = [
    "SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3",
    "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
    "cipherlist_3DES_IDEA", "heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego",
    "secure_client_renego", "CRIME_TLS", "BREACH", "POODLE_SSL", "fallback_SCSV",
    "SWEET32", "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13",
]
try:
    with open(testssl_path) as f:
        findings = json.load(f)
except (OSError, ValueError) as e:
    findings = []
    fail(f"testssl.sh: no report ({e})")
seen = set()
for x in findings:
    fid, sev, text = x.get("id", ""), x.get("severity", ""), x.get("finding", "")
    seen.add(fid)
    if fid.startswith(CERT_PREFIXES) or fid == "certificate_transparency":
        if sev not in ("OK", "INFO"):
            notes.append(f"testssl.sh {fid} [{sev}]: {text}")
        continue
    if fid.startswith("sessionresumption") and sev == "WARN":
        # A feature check, not a vulnerability: openssl s_client </dev/null sometimes
        # quits before the TLS 1.3 NewSessionTicket that follows the handshake arrives, and
        # testssl.sh then calls it a connect problem (2 of 40 tries by hand).
        notes.append(f"testssl.sh {fid}: {text} (s_client's race with TLS 1.3 tickets)")
        continue
    if fid == "RC4" and sev == "WARN" and "local OpenSSL" in text:
        # Debian's openssl 3 has no RC4 to try; sslyze's own OpenSSL does (below).
        notes.append(f"testssl.sh {fid}: {text} (sslyze checks RC4 suites itself)")
        continue
    if fid in ("scanProblem",) or sev in ("WARN", "FATAL"):
        fail(f"testssl.sh {fid} [{sev}]: {text}")
    elif sev in ("LOW", "MEDIUM", "HIGH", "CRITICAL"):
        fail(f"testssl.sh {fid} [{sev}]: {text}")
for fid in MUST_RUN:
    if findings and fid not in seen:
        fail(f"testssl.sh: check {fid} did not run")
checked.append(f"testssl.sh: {len(findings)} findings")

# ----- sslyze -------------------------------------------------------------------------
WEAK_SUITE = re.compile(r"RC4|3DES|_DES_|NULL|EXPORT|anon|MD5|_CBC_|IDEA|SEED|CAMELLIA.*SHA$")
try:
    with open(sslyze_path) as f:
        report = json.load(f)
    server = report["server_scan_results"][0]
except (OSError, ValueError, KeyError, IndexError) as e:
    server = None
    fail(f"sslyze: no report ({e})")
if server is not None:
    if server.get("connectivity_status") != "COMPLETED" or server.get("scan_status") != "COMPLETED":
        fail(f"sslyze: scan not completed: {server.get('connectivity_error_trace')}")
    results = server.get("scan_result") or {}
    for cmd, v in results.items():
        if v is not None and v.get("status") not in ("COMPLETED", "NOT_SCHEDULED"):
            fail(f"sslyze {cmd}: {v.get('status')} {v.get('error_reason')}")

    def res(cmd):
        v = results.get(cmd) or {}
        if v.get("status") != "COMPLETED":
            fail(f"sslyze {cmd}: did not run")
            return {}
        return v.get("result") or {}

    for old in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        r = res(f"{old}_cipher_suites")
        if r.get("is_tls_version_supported") or r.get("accepted_cipher_suites"):
            fail(f"sslyze: {old} accepted")
    suites = []
    for new in ("tls_1_2", "tls_1_3"):
        for a in res(f"{new}_cipher_suites").get("accepted_cipher_suites", []):
            cs = a["cipher_suite"]
            suites.append(cs["name"])
            if cs.get("key_size", 0) < 128 or WEAK_SUITE.search(cs["name"]):
                fail(f"sslyze: weak cipher suite {cs['name']} ({new})")
            key = a.get("ephemeral_key") or {}
            kind, size = key.get("type_name"), key.get("size", 0)
            if (kind == "ECDH" and size < 224) or (kind == "DH" and size < 2048):
                fail(f"sslyze: weak key exchange {kind} {size} bits with {cs['name']}")
    if not suites:
        fail("sslyze: no cipher suite accepted at all")
    for c in res("elliptic_curves").get("supported_curves", []):
        bits = {"X25519": 255, "X448": 448}.get(c["name"])
        if bits is None:
            m = re.search(r"(\d{3})", c["name"])
            bits = int(m.group(1)) if m else 0
        if bits < 224:
            fail(f"sslyze: weak curve {c['name']}")
    if res("tls_compression").get("supports_compression"):
        fail("sslyze: TLS compression (CRIME)")
    if res("tls_1_3_early_data").get("supports_early_data"):
        fail("sslyze: TLS 1.3 early data accepted (replayable requests)")
    if res("openssl_ccs_injection").get("is_vulnerable_to_ccs_injection") is not False:
        fail("sslyze: CCS injection (CVE-2014-0224)")
    if res("heartbleed").get("is_vulnerable_to_heartbleed") is not False:
        fail("sslyze: Heartbleed (CVE-2014-0160)")
    robot = res("robot").get("robot_result", "")
    if not robot.startswith("NOT_VULNERABLE"):
        fail(f"sslyze: ROBOT: {robot}")
    reneg = res("session_renegotiation")
    if reneg.get("supports_secure_renegotiation") is not True:
        fail("sslyze: no secure renegotiation (RFC 5746)")
    if reneg.get("is_vulnerable_to_client_renegotiation_dos") is not False:
        fail("sslyze: client-initiated renegotiation accepted (DoS)")
    if res("tls_fallback_scsv").get("supports_fallback_scsv") is not True:
        fail("sslyze: no downgrade protection (TLS_FALLBACK_SCSV)")
    if res("tls_extended_master_secret").get("supports_ems_extension") is not True:
        fail("sslyze: no extended master secret (triple handshake)")
    cert = res("certificate_info")
    for dep in cert.get("certificate_deployments", []):
        for p in dep.get("path_validation_results", []):
            if not p.get("was_validation_successful"):
                notes.append(
                    f"sslyze certificate, {p['trust_store']['name']} store: {p.get('validation_error')}"
                )
    hsts = res("http_headers").get("strict_transport_security_header")
    if hsts is None:
        notes.append("sslyze http_headers: no Strict-Transport-Security (the examples set none)")
    checked.append(f"sslyze: suites {', '.join(suites)}")

print(f"== {name}")
for c in checked:
    print(f"   {c}")
for n in notes:
    print(f"   note: {n}")
for f in failures:
    print(f"   FAIL: {f}")
print(f"   verdict: {'FAIL' if failures else 'no vulnerability found'}")
sys.exit(1 if failures else 0)
