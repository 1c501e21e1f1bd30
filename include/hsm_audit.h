/* hsm-audit: what libhsm_audit_pkcs11.so exports beyond PKCS#11.
 * Generated from pkcs11-shim/src/extra.rs by cbindgen; do not edit. */

#ifndef HSM_AUDIT_H
#define HSM_AUDIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Writes every row recorded so far in this process to its file before returning, waiting
 * at most `timeout_ms` milliseconds. Returns 0 on success, 1 on timeout.
 */
uint32_t hsm_audit_flush(uint32_t timeout_ms);

/**
 * Number of rows this process lost: calls made while no writer could start, plus rows the
 * writer could not write (calls, and the checkpoints and gap rows lost with them).
 */
uint64_t hsm_audit_lost_events(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* HSM_AUDIT_H */
