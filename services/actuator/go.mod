module github.com/sendguard/sendguard/services/actuator

go 1.26.0

require (
	github.com/sendguard/sendguard/pkg v0.0.0
	github.com/sendguard/sendguard/proto v0.0.0
)

replace (
	github.com/sendguard/sendguard/pkg => ../../pkg
	github.com/sendguard/sendguard/proto => ../../proto
)
