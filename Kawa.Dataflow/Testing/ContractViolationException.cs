namespace Kawa.Dataflow.Testing;

/// <summary>A source or destination broke a rule of its contract (thrown by the contract checks in this namespace).</summary>
public sealed class ContractViolationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ContractViolationException()
        : base("A contract rule was broken.")
    {
    }

    /// <summary>Creates the exception naming the broken rule.</summary>
    public ContractViolationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception naming the broken rule, with a cause.</summary>
    public ContractViolationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
