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

    // The next four follow the contract's declared capabilities (SourceContract<T>.CanStayOpen, CanEnd,
    // OutcomesReachSource, RedeliversNegativeAcks): a source that declares one false is held to what it does instead, never let off.

    /// <summary>A pending receive honours cancellation; a source declared unable to stay open (a file replay) must
    /// instead end at once when empty.</summary>
    [Test]
    public Task ReceiveAsync_PendingOnEmptySource_HonoursCancellationOrEndsIfItCannotStayOpen()
        => Contract.CanStayOpen ? Contract.PendingReceiveHonoursCancellationAsync() : Contract.EmptySourceEndsAtOnceAsync();

    /// <summary>End of stream is stable; a source declared never to end (a followed file) must instead keep waiting after
    /// its last message.</summary>
    [Test]
    public Task ReceiveAsync_AfterLastMessage_KeepsReturningEndOrKeepsWaitingIfItNeverEnds()
        => Contract.CanEnd ? Contract.EndOfStreamIsStableAsync() : Contract.KeepsWaitingAfterLastMessageAsync();

    /// <summary>Each outcome reaches the source once; a source declared at-most-once (core NATS) must instead record none
    /// and deliver nothing again after a negative ack.</summary>
    [Test]
    public Task AckToken_Outcome_ReachesSourceOnceOrChangesNothingIfAtMostOnce()
        => Contract.OutcomesReachSource ? Contract.OutcomeReachesSourceAsync() : Contract.OutcomeChangesNothingAsync();

    /// <summary>A negatively acked message comes back with a fresh token; a source declared not to redeliver (it hands
    /// outcomes to a callback, or is at-most-once) must instead not deliver it again.</summary>
    [Test]
    public Task AckToken_NegativeAck_RedeliveredOrNotIfDeclaredSo()
        => Contract.RedeliversNegativeAcks ? Contract.NegativeAckIsRedeliveredAsync() : Contract.NegativeAckIsNotRedeliveredAsync();
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
