package mock_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/mock"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

// TestProviderContract runs the provider port's contract suite against the
// mock, whose mock-slow model waits long enough to be cancelled.
func TestProviderContract(t *testing.T) {
	contract.TestProvider(t, func(t *testing.T) contract.ProviderSubject {
		return contract.ProviderSubject{Provider: newMock(t, mock.Options{}),
			ChatModel: "mock-chat", EmbedModel: "mock-embed", SlowModel: mock.ModelSlow}
	})
}
