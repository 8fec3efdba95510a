using Kawa.Dataflow.Testing;

namespace Kawa.Dataflow.Tests.Contracts;

/// <summary>The source contract as NUnit tests: derive with a <see cref="SourceContract{T}"/> for the source under test.</summary>
public abstract class SourceContractTests<T>
{
    protected abstract SourceContract<T> Contract { get; }

    [Test]
    public Task ReceiveAsync_EachDelivery_HasAFreshPendingToken() => Contract.EachDeliveryHasAFreshTokenAsync();

    [Test]
    public Task ReceiveAsync_CancelledToken_Throws() => Contract.ReceiveWithCancelledTokenThrowsAsync();

    [Test]
    public Task ReceiveAsync_PendingOnEmptySource_HonoursCancellation() => Contract.PendingReceiveHonoursCancellationAsync();

    [Test]
    public Task ReceiveAsync_AfterEndOfStream_KeepsReturningEnd() => Contract.EndOfStreamIsStableAsync();

    [Test]
    public Task AckToken_Outcome_ReachesSourceOnce() => Contract.OutcomeReachesSourceAsync();
}

/// <summary>The destination contract as NUnit tests: derive with a <see cref="DestinationContract{T}"/> for the destination under test.</summary>
public abstract class DestinationContractTests<T>
{
    protected abstract DestinationContract<T> Contract { get; }

    [Test]
    public Task SendAsync_Acks_IfAndOnlyIfDurable() => Contract.AcksIfAndOnlyIfDurableAsync();

    [Test]
    public Task SendAsync_SeveralMessagesOneToken_AckedOnce() => Contract.SendOfSeveralIsAckedOnceAsync();

    [Test]
    public Task FlushAsync_SettlesEverythingHeld() => Contract.FlushSettlesEverythingHeldAsync();

    [Test]
    public Task CommitHeldAsync_SettlesEverythingSentBeforeAndKeepsWorking() => Contract.CommitHeldSettlesEverythingSentAsync();

    [Test]
    public Task SendAsync_WritesFail_NeverAcks() => Contract.FailingWriteDoesNotAckAsync();
}
