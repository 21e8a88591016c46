package enclave

import (
	"context"
	"time"

	"insitu/enclave/job"
)

// DefaultPoll is how often the job worker looks for approved jobs when nothing wakes it.
const DefaultPoll = 5 * time.Second

// WorkerOptions configure RunApproved.
type WorkerOptions struct {
	RunOptions
	// Poll is how often to look for approved jobs besides Wake; DefaultPoll when 0.
	Poll time.Duration
	// Done, when set, is called after each job the worker ran, with its report or the error that
	// kept it from reaching a final state.
	Done func(id string, rep *RunReport, err error)
}

// Wake tells the job worker to look for approved jobs now (after an approval). It never blocks.
func (e *Enclave) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// RunApproved is the enclave's job worker: it runs approved and queued jobs one at a time, oldest
// first, until ctx ends, and returns ctx's error. Call Jobs.Recover before starting it. A job being
// run when ctx ends is cancelled by the runner and marked failed.
func (e *Enclave) RunApproved(ctx context.Context, opts WorkerOptions) error {
	poll := opts.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for {
			id, ok, err := e.nextRunnable(ctx)
			if err != nil || !ok {
				break
			}
			rep, err := e.RunJob(ctx, id, opts.RunOptions)
			if opts.Done != nil {
				opts.Done(id, rep, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				break // a store error: try again at the next tick rather than spin
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.wake:
		case <-t.C:
		}
	}
}

// nextRunnable returns the oldest job waiting to run: queued first (a job queued before a
// restart), then approved.
func (e *Enclave) nextRunnable(ctx context.Context) (string, bool, error) {
	jobs, err := e.Jobs.List(ctx, "")
	if err != nil {
		return "", false, err
	}
	for _, want := range []job.State{job.Queued, job.Approved} {
		for _, j := range jobs {
			if j.State == want {
				return j.ID, true, nil
			}
		}
	}
	return "", false, nil
}
