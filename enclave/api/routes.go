package api

import (
	"net/http"

	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
)

// Ownership says what a route restricts to the calling party beyond its role: the handler enforces
// it, and the route table documents it.
type Ownership string

const (
	// OwnNone: the role is all that is checked.
	OwnNone Ownership = ""
	// OwnJob: a bank or researcher reaches only the jobs whose manifest names it (another party's job
	// answers not_found, as an unknown id does); a steward reaches every job.
	OwnJob Ownership = "own job"
	// OwnList: a bank or researcher is shown only its own objects; a steward all of them.
	OwnList Ownership = "own objects listed"
	// OwnSubmit: the signed manifest must name the calling party as its bank, its labels must be the
	// caller's, and a researcher's dataset must be of class public or synthetic.
	OwnSubmit Ownership = "own manifest"
	// OwnCounts: a bank gets the counts of its own authorizations only.
	OwnCounts Ownership = "own counts"
	// OwnDatasets: a steward sees every version in full; a bank only names, classes and versions; a
	// researcher only those of public and synthetic datasets.
	OwnDatasets Ownership = "dataset classes"
	// OwnModel: a bank reaches only its own registered models (another bank's answers not_found, as
	// an unknown id does); a steward reaches every model where the route allows stewards.
	OwnModel Ownership = "own model"
)

// Body limits, in bytes.
const (
	LimitJSON     = 64 << 10
	LimitManifest = 1<<20 + 64<<10
	LimitCSV      = 64 << 20
	LimitLabels   = 256<<20 + 64<<10
	LimitPlugin   = pluginstore.DefaultMaxSize
)

// Roles a route may name; RolePublic routes need no signature.
const (
	RoleBank       = keys.RoleBank
	RoleSteward    = keys.RoleSteward
	RoleResearcher = keys.RoleResearcher
	RoleAdmin      = keys.RoleAdmin
)

// Route is one entry of the route table: the method and ServeMux path pattern, the roles that may
// call it (none: it needs no authentication), the ownership rule its handler enforces, and its body
// limit. The router registers exactly these routes, each behind the role check.
type Route struct {
	Method  string
	Pattern string
	Roles   []string
	Owner   Ownership
	MaxBody int64
	// Stream is set when the handler reads the body as a stream (plugin upload, CSV import) instead
	// of the server buffering it.
	Stream  bool
	Summary string
	handle  handlerFunc
}

// Public reports whether the route needs no authentication.
func (r Route) Public() bool { return len(r.Roles) == 0 }

// Allows reports whether a party of role may call the route.
func (r Route) Allows(role string) bool {
	for _, x := range r.Roles {
		if x == role {
			return true
		}
	}
	return false
}

type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request, c *Caller) error

var (
	anyParty   = []string{RoleBank, RoleSteward, RoleResearcher, RoleAdmin}
	requesters = []string{RoleBank, RoleResearcher}
	jobViewers = []string{RoleBank, RoleResearcher, RoleSteward}
	stewards   = []string{RoleSteward}
	admins     = []string{RoleAdmin}
	overseers  = []string{RoleSteward, RoleAdmin}
	// modelViewers reach registered models: a bank its own, a steward every bank's.
	modelViewers = []string{RoleBank, RoleSteward}
)

// routes is the route table: every route the server serves, with who may call it.
var routes = []Route{
	{Method: "GET", Pattern: "/healthz", Summary: "liveness", handle: (*Server).health},
	{Method: "GET", Pattern: "/metrics", Roles: overseers, Summary: "Prometheus metrics", handle: (*Server).metrics},
	{Method: "GET", Pattern: "/v1/whoami", Roles: anyParty, Summary: "the calling party as registered", handle: (*Server).whoami},

	{Method: "POST", Pattern: "/v1/parties", Roles: admins, MaxBody: LimitJSON, Summary: "register a party's public identity", handle: (*Server).addParty},
	{Method: "GET", Pattern: "/v1/parties", Roles: admins, Summary: "list parties", handle: (*Server).listParties},
	{Method: "DELETE", Pattern: "/v1/parties/{name}", Roles: admins, Summary: "end a party's registration", handle: (*Server).removeParty},

	{Method: "GET", Pattern: "/v1/settings", Roles: overseers, Summary: "quorum and minimum cohort", handle: (*Server).getSettings},
	{Method: "PUT", Pattern: "/v1/settings/{key}", Roles: overseers, MaxBody: LimitJSON, Summary: "set a setting", handle: (*Server).setSetting},
	{Method: "GET", Pattern: "/v1/budgets", Roles: overseers, Summary: "privacy budgets and spends per bank and dataset (?bank=&dataset=), and the minimum cell count", handle: (*Server).listBudgets},
	{Method: "PUT", Pattern: "/v1/budgets/{bank}/{dataset}", Roles: overseers, MaxBody: LimitJSON, Summary: "set a bank's total privacy budget on a dataset (audited)", handle: (*Server).setBudget},
	{Method: "PUT", Pattern: "/v1/budgets/min-count", Roles: overseers, MaxBody: LimitJSON, Summary: "set the minimum cell count of aggregate answers (audited)", handle: (*Server).setMinCount},

	{Method: "POST", Pattern: "/v1/plugins", Roles: requesters, MaxBody: LimitPlugin, Stream: true, Summary: "upload a plugin binary (body: the binary)", handle: (*Server).uploadPlugin},
	{Method: "GET", Pattern: "/v1/plugins", Roles: jobViewers, Owner: OwnList, Summary: "list plugins", handle: (*Server).listPlugins},

	{Method: "POST", Pattern: "/v1/labels", Roles: requesters, MaxBody: LimitLabels, Summary: "upload a sealed label file (body: the file)", handle: (*Server).uploadLabels},
	{Method: "GET", Pattern: "/v1/labels", Roles: requesters, Owner: OwnList, Summary: "list own label files", handle: (*Server).listLabels},

	{Method: "POST", Pattern: "/v1/jobs", Roles: requesters, Owner: OwnSubmit, MaxBody: LimitManifest, Summary: "submit a signed manifest", handle: (*Server).submitJob},
	{Method: "GET", Pattern: "/v1/jobs", Roles: jobViewers, Owner: OwnList, Summary: "list jobs", handle: (*Server).listJobs},
	{Method: "GET", Pattern: "/v1/jobs/{id}", Roles: jobViewers, Owner: OwnJob, Summary: "show a job", handle: (*Server).getJob},
	{Method: "GET", Pattern: "/v1/jobs/{id}/watch", Roles: jobViewers, Owner: OwnJob, Summary: "wait until the job leaves ?state= (long poll, ?wait= up to 60s)", handle: (*Server).watchJob},
	{Method: "POST", Pattern: "/v1/jobs/{id}/cancel", Roles: jobViewers, Owner: OwnJob, MaxBody: LimitJSON, Summary: "cancel a job", handle: (*Server).cancelJob},
	{Method: "GET", Pattern: "/v1/jobs/{id}/result", Roles: requesters, Owner: OwnJob, Summary: "the sealed result and receipt", handle: (*Server).jobResult},
	{Method: "GET", Pattern: "/v1/jobs/{id}/receipt", Roles: jobViewers, Owner: OwnJob, Summary: "the signed receipt", handle: (*Server).jobReceipt},
	{Method: "GET", Pattern: "/v1/jobs/{id}/review", Roles: stewards, Summary: "what a steward weighs", handle: (*Server).reviewJob},
	{Method: "POST", Pattern: "/v1/jobs/{id}/approve", Roles: stewards, MaxBody: LimitJSON, Summary: "approve: a signature over the manifest hash", handle: (*Server).approveJob},
	{Method: "POST", Pattern: "/v1/jobs/{id}/reject", Roles: stewards, MaxBody: LimitJSON, Summary: "reject with a signed reason", handle: (*Server).rejectJob},

	{Method: "POST", Pattern: "/v1/consent/import", Roles: stewards, MaxBody: LimitCSV, Stream: true, Summary: "import authorizations (body: CSV; ?name=)", handle: (*Server).importConsent},
	{Method: "POST", Pattern: "/v1/consent/grants", Roles: stewards, MaxBody: LimitJSON, Summary: "grant one authorization", handle: (*Server).grantConsent},
	{Method: "POST", Pattern: "/v1/consent/{id}/revoke", Roles: stewards, MaxBody: LimitJSON, Summary: "revoke an authorization", handle: (*Server).revokeConsent},
	{Method: "GET", Pattern: "/v1/consent", Roles: stewards, Summary: "list authorizations (identifiers masked)", handle: (*Server).listConsent},
	{Method: "GET", Pattern: "/v1/consent/counts", Roles: []string{RoleSteward, RoleBank}, Owner: OwnCounts, Summary: "authorization counts per bank", handle: (*Server).consentCounts},

	{Method: "GET", Pattern: "/v1/audit/records", Roles: overseers, Summary: "audit records (?after=&limit=)", handle: (*Server).auditRecords},
	{Method: "POST", Pattern: "/v1/audit/verify", Roles: overseers, MaxBody: LimitJSON, Summary: "verify the audit log", handle: (*Server).auditVerify},
	{Method: "POST", Pattern: "/v1/audit/checkpoint", Roles: overseers, Summary: "sign a checkpoint of the head", handle: (*Server).auditCheckpoint},

	{Method: "POST", Pattern: "/v1/psi", Roles: []string{RoleBank}, MaxBody: LimitPSI, Summary: "one message of private set intersection (body and answer: package psi's binary messages)", handle: (*Server).psiHandle},

	{Method: "GET", Pattern: "/v1/passkeys/requests/{code}", Roles: overseers, Summary: "a passkey registered in the console, waiting for its party's signed enrolment", handle: (*Server).passkeyRequest},
	{Method: "POST", Pattern: "/v1/passkeys", Roles: overseers, MaxBody: LimitJSON, Summary: "enrol a passkey: the statement signed with the party's key", handle: (*Server).enrollPasskey},

	// The steward console authenticates with passkeys and sessions of its own (package console):
	// these routes need no request signature; its pages check the session's role.
	{Method: "GET", Pattern: "/console/", Summary: "the steward console's pages (passkey sign-in, sessions)", handle: (*Server).consoleHandle},
	{Method: "POST", Pattern: "/console/", MaxBody: LimitJSON, Summary: "the steward console's forms (CSRF token, session, passkey assertions)", handle: (*Server).consoleHandle},

	{Method: "GET", Pattern: "/v1/datasets", Roles: jobViewers, Owner: OwnDatasets, Summary: "list dataset versions", handle: (*Server).listDatasets},
	{Method: "GET", Pattern: "/v1/datasets/{name}/{version}", Roles: stewards, Summary: "a dataset version's manifest and quality report", handle: (*Server).showDataset},

	{Method: "GET", Pattern: "/v1/models", Roles: modelViewers, Owner: OwnList, Summary: "list registered models (?active=true, ?bank=)", handle: (*Server).listModels},
	{Method: "GET", Pattern: "/v1/models/{id}", Roles: modelViewers, Owner: OwnModel, Summary: "show a model: in full to its bank, summarised to a steward", handle: (*Server).getModel},
	{Method: "GET", Pattern: "/v1/models/{id}/export", Roles: []string{RoleBank}, Owner: OwnModel, Summary: "the model as JSON or PMML 4.4 (?format=json|pmml)", handle: (*Server).exportModel},
	{Method: "POST", Pattern: "/v1/models/{id}/revoke", Roles: modelViewers, Owner: OwnModel, MaxBody: LimitJSON, Summary: "revoke a model: it never scores again", handle: (*Server).revokeModel},
	{Method: "POST", Pattern: "/v1/models/{id}/monitor", Roles: modelViewers, Owner: OwnModel, MaxBody: LimitJSON, Summary: "stability of the model's scores and inputs between dataset versions", handle: (*Server).monitorModel},
	{Method: "POST", Pattern: "/v1/score", Roles: []string{RoleBank}, Owner: OwnModel, MaxBody: LimitScore, Summary: "score subjects with an own registered model", handle: (*Server).score},
	{Method: "POST", Pattern: "/v1/verify", Roles: []string{RoleBank}, MaxBody: LimitJSON, Summary: "does a subject's field hold a claimed value (data-verification items)", handle: (*Server).verify},
	{Method: "GET", Pattern: "/v1/serving/settings", Roles: stewards, Summary: "serving settings", handle: (*Server).getServingSettings},
	{Method: "PUT", Pattern: "/v1/serving/settings/{key}", Roles: stewards, MaxBody: LimitJSON, Summary: "set a serving setting (serving.min_features)", handle: (*Server).setServingSetting},
}

// Routes returns the route table the server registers, in order.
func Routes() []Route { return append([]Route(nil), routes...) }
