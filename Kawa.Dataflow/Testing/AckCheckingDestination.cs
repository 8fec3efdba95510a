using System.Collections.Concurrent;

namespace Kawa.Dataflow.Testing;

/// <summary>
/// Wraps a destination and checks, at the moment each token is settled, that it acks only what is durable; records
/// every violation and every token still unsettled. For contract tests, and for debugging a sink in a real pipeline.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// Each send's token is replaced by a checking token that forwards the outcome to the original. At an ack, every
/// message of that send must satisfy the durability predicate, or a violation is recorded (the ack is still forwarded).
/// </remarks>
public sealed class AckCheckingDestination<T> : IDestination<T>
{
    private readonly IDestination<T> _inner;
    private readonly Func<Message<T>, bool> _isDurable;
    private readonly ConcurrentQueue<string> _violations = new();
    private readonly ConcurrentDictionary<CheckingToken, byte> _pending = new();

    /// <summary>Creates the wrapper.</summary>
    /// <param name="inner">The destination under test.</param>
    /// <param name="isDurable">Whether a message is durable right now (for example: present in the file or table the destination writes).</param>
    public AckCheckingDestination(IDestination<T> inner, Func<Message<T>, bool> isDurable)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(isDurable);
        _inner = inner;
        _isDurable = isDurable;
    }

    /// <summary>Every violation seen so far, in order.</summary>
    public IReadOnlyList<string> Violations => [.. _violations];

    /// <summary>How many tokens handed to the destination have no outcome yet.</summary>
    public int Unsettled => _pending.Count;

    /// <inheritdoc/>
    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ack);
        var token = new CheckingToken(this, ack, [.. messages]);
        _pending.TryAdd(token, 0);
        return SendCoreAsync(token, messages, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => _inner.FlushAsync(cancellationToken);

    /// <inheritdoc/>
    public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => _inner.CommitHeldAsync(cancellationToken);

    /// <summary>Throws <see cref="ContractViolationException"/> if any violation was recorded.</summary>
    public void ThrowIfViolated()
    {
        if (!_violations.IsEmpty)
        {
            throw new ContractViolationException(string.Join(Environment.NewLine, _violations));
        }
    }

    /// <summary>Throws <see cref="ContractViolationException"/> if any token the destination kept (did not throw for) has no outcome.</summary>
    /// <param name="when">When this is checked, for the message (for example "after FlushAsync").</param>
    public void ThrowIfUnsettled(string when)
    {
        if (!_pending.IsEmpty)
        {
            throw new ContractViolationException($"{_pending.Count} token(s) still had no outcome {when}: a destination must settle every token it holds.");
        }
    }

    private async ValueTask SendCoreAsync(CheckingToken token, Messages<T> messages, CancellationToken cancellationToken)
    {
        try
        {
            await _inner.SendAsync(token, messages, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // The destination threw, so the token is the caller's: it must not settle it later.
            token.Thrown = true;
            _pending.TryRemove(token, out _);
            if (token.IsCompleted)
            {
                _violations.Enqueue($"The destination threw from SendAsync but also settled its token ({token.Outcome?.Kind}): it must do one or the other.");
            }

            throw;
        }
    }

    private sealed class CheckingToken(AckCheckingDestination<T> owner, AckToken original, Message<T>[] messages) : AckToken
    {
        public volatile bool Thrown;

        protected override void OnCompleted(AckOutcome outcome)
        {
            owner._pending.TryRemove(this, out _);
            if (Thrown)
            {
                owner._violations.Enqueue($"The destination settled a token ({outcome.Kind}) after SendAsync threw for it.");
            }

            if (outcome.Kind == AckKind.Ack)
            {
                foreach (var message in messages)
                {
                    if (!owner._isDurable(message))
                    {
                        owner._violations.Enqueue($"Acked before durable: {message.Value} (key '{message.Key}') was not durable when its token was acked.");
                    }
                }
            }

            original.TryComplete(outcome);
        }

        protected override void OnInProgress() => original.InProgress();
    }
}
