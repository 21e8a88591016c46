// Package api is the enclave's JSON HTTP API under /v1, served over TLS 1.3 by insitu serve, and the
// signed-request scheme its clients use.
//
// Call LoadOrCreateCert for the enclave's self-signed certificate (clients pin its Fingerprint),
// New with the open enclave, and serve Handler with ServerTLSConfig. Package client is the Go client.
//
// # Authentication
//
// Every request but /healthz is signed with the calling party's ML-DSA-65 key (SignRequest): the
// Authorization header carries the party's name, a timestamp, a random nonce, the body's SHA-256 and
// the signature over all of them with the method and path (RequestMessage). The server looks the
// party up in the job board's registry, verifies the signature, accepts timestamps within MaxSkew of
// its clock and each nonce once in that window — in memory and in the state database, so that
// a restart does not forget them — and records failed attempts in the audit log (rate-limited).
//
// # Authorization
//
// The route table (Routes) names, for every route, the roles that may call it and the ownership rule
// its handler applies; the router registers exactly the table's routes, each behind the role check.
// A bank reaches only its own jobs, labels, plugins, results and authorization counts: another
// party's job answers not_found, as an unknown id does.
//
// # Errors
//
// Every error is a JSON body {"error":{"code":…,"message":…}} with one of the Code constants and the
// matching HTTP status.
package api
