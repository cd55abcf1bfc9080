package normalize

import (
	"strings"

	"github.com/sendguard/sendguard/pkg/classify"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// bounceIn is what a provider reports about a failed or delayed delivery.
type bounceIn struct {
	esp, espType, espSubType string
	smtpCode                 int64
	enhanced                 string
	diagnostic               string
	reportingMTA             string
}

// bounce builds the canonical bounce object: codes are taken from the
// provider's fields or, failing that, parsed out of the diagnostic; class
// and category come from classify.Bounce. Codes outside the SMTP range
// (Mailgun's internal 605) are dropped.
func bounce(in bounceIn) *sgv1.Bounce {
	diag := cleanDiagnostic(in.diagnostic)
	enh := ""
	if in.enhanced != "" {
		enh = classify.ParseEnhancedCode(in.enhanced)
	}
	if enh == "" {
		enh = classify.ParseEnhancedCode(diag)
	}
	code := int(in.smtpCode)
	if code < 200 || code > 599 {
		code = classify.ParseSMTPCode(diag)
	}
	v := classify.Bounce(classify.BounceInput{
		SMTPCode:     code,
		EnhancedCode: enh,
		Diagnostic:   diag,
		ESP:          in.esp,
		ESPType:      in.espType,
		ESPSubType:   in.espSubType,
	})
	return &sgv1.Bounce{
		Class:        v.Class,
		Category:     v.Category,
		SmtpCode:     int32(code),
		EnhancedCode: enh,
		Diagnostic:   diag,
		ReportingMta: cleanMTA(in.reportingMTA),
	}
}

// deferral is bounce for a delayed delivery: always soft, since the
// provider is still retrying.
func deferral(in bounceIn) *sgv1.Bounce {
	b := bounce(in)
	b.Class = sgv1.BounceClass_BOUNCE_CLASS_SOFT
	return b
}

// cleanDiagnostic strips the RFC 3464 diagnostic type ("smtp; 550 ...")
// and surrounding space.
func cleanDiagnostic(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ';'); i > 0 && i <= 8 && isWord(s[:i]) {
		s = strings.TrimSpace(s[i+1:])
	}
	return s
}

// cleanMTA strips the RFC 3464 MTA name type ("dsn; mta.example.com").
func cleanMTA(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ';'); i > 0 && i <= 8 && isWord(s[:i]) {
		s = strings.TrimSpace(s[i+1:])
	}
	return s
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// feedbackType maps an ARF feedback type word ("abuse", "not-spam" …).
func feedbackType(s string) sgv1.FeedbackType {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-")) {
	case "abuse", "":
		return sgv1.FeedbackType_FEEDBACK_TYPE_ABUSE
	case "fraud":
		return sgv1.FeedbackType_FEEDBACK_TYPE_FRAUD
	case "not-spam":
		return sgv1.FeedbackType_FEEDBACK_TYPE_NOT_SPAM
	case "auth-failure":
		return sgv1.FeedbackType_FEEDBACK_TYPE_AUTH_FAILURE
	case "virus":
		return sgv1.FeedbackType_FEEDBACK_TYPE_VIRUS
	}
	return sgv1.FeedbackType_FEEDBACK_TYPE_OTHER
}

// espComplaint is a complaint relayed by an ESP.
func espComplaint(fbType, provider string) *sgv1.Complaint {
	return &sgv1.Complaint{
		Source:           sgv1.ComplaintSource_COMPLAINT_SOURCE_ESP,
		FeedbackType:     feedbackType(fbType),
		FeedbackProvider: strings.TrimSpace(provider),
	}
}
