package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/sendguard/sendguard/pkg/webhooksig"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// verified is the outcome of a successful webhook check.
type verified struct {
	// sns is the verified SNS message (nil for other providers or when the
	// tenant configured no SNS verification).
	sns     *webhooksig.SNSMessage
	snsConf *webhooksig.SNS
	// release undoes what the check recorded (a Mailgun token) when the
	// delivery is not accepted after all.
	release func()
}

func (v verified) undo() {
	if v.release != nil {
		v.release()
	}
}

// verify runs the tenant's signature check for src, if it configured one.
// A missing signature or credential is 401, a wrong one 403 (400 when the
// payload is too malformed to carry one); each refusal is counted and
// logged without secrets.
func (s *Stage) verify(r *http.Request, endpoint, tenant string, src sgv1.Source, body []byte) (verified, *httpError) {
	t := s.cfg.Webhooks.Tenant(tenant)
	if t == nil {
		return verified{}, nil
	}
	now := s.cfg.Now()
	var (
		v   verified
		err error
	)
	switch src {
	case sgv1.Source_SOURCE_SENDGRID:
		if t.SendGrid != nil {
			err = t.SendGrid.Verify(r.Header.Get(webhooksig.SendGridSignatureHeader), r.Header.Get(webhooksig.SendGridTimestampHeader), body, now)
		}
	case sgv1.Source_SOURCE_MAILGUN:
		if t.Mailgun != nil {
			v.release, err = t.Mailgun.Verify(body, now)
		}
	case sgv1.Source_SOURCE_POSTMARK:
		if t.Postmark != nil {
			user, pass, ok := r.BasicAuth()
			err = t.Postmark.Verify(user, pass, ok)
		}
	case sgv1.Source_SOURCE_SPARKPOST:
		if t.SparkPost != nil {
			user, pass, ok := r.BasicAuth()
			err = t.SparkPost.Verify(user, pass, ok)
		}
	case sgv1.Source_SOURCE_SES:
		if t.SNS != nil {
			v.snsConf = t.SNS
			v.sns, err = t.SNS.Verify(body, now)
		}
	}
	if err == nil {
		return v, nil
	}
	code, reason := http.StatusForbidden, "invalid"
	var we *webhooksig.Error
	if errors.As(err, &we) {
		reason = we.Reason
		switch {
		case we.Kind == webhooksig.Missing:
			code = http.StatusUnauthorized
		case we.Reason == "malformed":
			code = http.StatusBadRequest
		}
	}
	s.sigFailures.WithLabelValues(endpoint, tenant, reason).Inc()
	s.logger.Warn("webhook verification refused", zap.String("endpoint", endpoint), zap.String("tenant", tenant),
		zap.String("reason", reason), zap.Int("code", code), zap.String("remote", r.RemoteAddr), zap.String("error", err.Error()))
	return verified{}, &httpError{code: code, reason: "signature_" + reason, msg: err.Error()}
}

// snsHousekeeping answers a verified SubscriptionConfirmation (confirming
// it by fetching SubscribeURL when the tenant allows it) or
// UnsubscribeConfirmation. Neither carries events: nothing is published.
func (s *Stage) snsHousekeeping(r *http.Request, tenant string, m *webhooksig.SNSMessage, conf *webhooksig.SNS) (*reply, *httpError) {
	log := s.logger.With(zap.String("tenant", tenant), zap.String("topic_arn", m.TopicArn), zap.String("sns_type", m.Type))
	if m.Type == webhooksig.SNSUnsubscribeConfirmation {
		log.Info("sns unsubscribe confirmation received; nothing to do")
		return &reply{code: http.StatusOK, body: map[string]string{"sns": "unsubscribe acknowledged", "topic_arn": m.TopicArn}}, nil
	}
	if !conf.Confirm {
		log.Info("sns subscription confirmation received; confirm_subscriptions is off: confirm it by visiting SubscribeURL",
			zap.String("subscribe_url", m.SubscribeURL))
		return &reply{code: http.StatusOK, body: map[string]string{"sns": "subscription not confirmed (confirm_subscriptions is off)", "topic_arn": m.TopicArn}}, nil
	}
	if err := s.confirmSNS(r.Context(), m.SubscribeURL); err != nil {
		log.Warn("sns subscription confirmation failed", zap.Error(err))
		return nil, &httpError{code: http.StatusServiceUnavailable, reason: "sns_confirm_failed", retryAfter: 5 * time.Second,
			msg: "could not confirm the SNS subscription: " + err.Error()}
	}
	log.Info("sns subscription confirmed")
	return &reply{code: http.StatusOK, body: map[string]string{"sns": "subscription confirmed", "topic_arn": m.TopicArn}}, nil
}

// confirmSNS GETs an https SubscribeURL within ConfirmTimeout.
func (s *Stage) confirmSNS(ctx context.Context, subscribeURL string) error {
	u, err := url.Parse(subscribeURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("SubscribeURL %q is not an https URL", subscribeURL)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConfirmTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("confirm request: %w", err)
	}
	resp, err := s.cfg.ConfirmClient.Do(req)
	if err != nil {
		return fmt.Errorf("confirm: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("confirm: SubscribeURL answered %s", resp.Status)
	}
	return nil
}

// warnUnverifiedConfirmation logs an SNS SubscriptionConfirmation that
// arrives for a tenant without SNS verification: it cannot be confirmed
// safely (the SubscribeURL is unauthenticated), so an operator must
// configure the tenant's sns section or confirm it by hand. The message is
// accepted like any payload (it yields no event).
func (s *Stage) warnUnverifiedConfirmation(tenant string, body []byte) {
	if !bytes.Contains(body, []byte(webhooksig.SNSSubscriptionConfirmation)) {
		return
	}
	m, err := webhooksig.ParseSNS(body)
	if err != nil || m.Type != webhooksig.SNSSubscriptionConfirmation {
		return
	}
	s.logger.Warn("sns subscription confirmation for a tenant without sns verification: not confirmed; add the tenant's sns section to the webhook config or visit SubscribeURL",
		zap.String("tenant", tenant), zap.String("topic_arn", m.TopicArn), zap.String("subscribe_url", m.SubscribeURL))
}
