with questions as (
    select * from {{ ref('questions') }}
),

final as (
    select
        question_code,
        question_number,
        question_ar,
        question_zh,
        question_en,
        question_fr,
        question_de,
        question_ru,
        question_es
    from questions
)

select * from final
